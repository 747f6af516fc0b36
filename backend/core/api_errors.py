"""One error format for the whole API: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from backend.core.errors import ChorusError

log = logging.getLogger(__name__)

# Seconds a client is asked to wait before retrying after the database connection was lost.
DATABASE_RETRY_AFTER = 1


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested validation detail into {"a.b": ["message", ...]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "non_field_errors" if key == "non_field_errors" else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "non_field_errors": [str(detail)]}


def error_body(code: str, message: str, fields: dict | None = None, **extra: Any) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}, **extra}}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ChorusError):
        return Response(error_body(exc.code, exc.message, exc.fields, **exc.extra), exc.status)
    if isinstance(exc, OperationalError | InterfaceError):
        return _database_unavailable(exc)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid_input", "The request is not valid.", _flatten(exc.detail))
    elif isinstance(exc, exceptions.Throttled):
        # Whole seconds, at least one, the same in the header and the message.
        wait = max(1, math.ceil(getattr(exc, "wait", None) or 1))
        response["Retry-After"] = str(wait)
        body = error_body(
            "rate_limited", f"Too many requests; retry in {wait} s.", retry_after=wait
        )
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        if response.status_code == status.HTTP_401_UNAUTHORIZED:
            code = "not_authenticated" if code != "authentication_failed" else code
        body = error_body(str(code), str(detail))
    response.data = body
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404 for URLs no route matches: the API's error body under /api/, a page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No such resource."), status=404)
    return page_not_found(request, exception)


def _database_unavailable(exc: Exception) -> Response:
    """The connection broke (a restarted or failed-over server, a killed backend) or the
    transaction could not go on (a deadlock, a serialisation failure): the transaction was
    rolled back, so the request may simply be repeated; submissions carry an idempotency
    key that makes the repeat safe even when the first one did commit. The pool discards
    the broken connection when the request ends."""
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    body = error_body(
        "database_unavailable",
        "The database connection was lost. Retry in a moment; a submission with the same "
        "idempotency key, so that it is stored once.",
    )
    return Response(
        body,
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )
