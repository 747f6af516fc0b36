"""The API's rate limits as DRF throttles (a refusal is a 429 with Retry-After)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from backend.core import ratelimit


class _ScopeThrottle(BaseThrottle):
    retry_after = 0

    def scope_for(self, request: Request, view: Any) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        scope = self.scope_for(request, view)
        if scope is None:
            return True
        user = request.user
        self.retry_after = ratelimit.consume(
            scope,
            user_id=user.pk if user is not None and user.is_authenticated else None,
            ip=ratelimit.client_ip(request),
        )
        return self.retry_after == 0

    def wait(self) -> float | None:
        return self.retry_after or None


class ApiThrottle(_ScopeThrottle):
    """Every API request: the "api" scope, a ceiling per user and per anonymous address."""

    def scope_for(self, request: Request, view: Any) -> str | None:
        return "api"


class ActionThrottle(_ScopeThrottle):
    """The scope a view names for the request's method, e.g.
    `rate_scopes = {"POST": "task_request"}`: its rates per user and per address."""

    def scope_for(self, request: Request, view: Any) -> str | None:
        scopes: dict[str, str] = getattr(view, "rate_scopes", {})
        return scopes.get(request.method or "")
