"""Experiment: the app's settings plus bench.querylog.QueryLogMiddleware (see there)."""

from backend.settings import *  # noqa: F403
from backend.settings import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE, "bench.querylog.QueryLogMiddleware"]
