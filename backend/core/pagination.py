"""The API's pages of a list: `?limit=&offset=`, validated instead of silently ignored."""

from __future__ import annotations

import re
from typing import Any

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from backend.core.errors import InvalidInput

# PostgreSQL takes LIMIT and OFFSET as bigint; a bound far below that keeps every accepted
# value a valid query (a larger one would fail in the database, as a 500).
MAX_NUMBER = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: int() would also take "١٢" or " 12 "


class Pagination(LimitOffsetPagination):
    """DRF's limit/offset pages, but a malformed `limit` or `offset` is a 400 naming the
    parameter (DRF falls back to the defaults, so a typo silently returns another page)."""

    def get_limit(self, request: Request) -> int | None:
        limit = _number(request, self.limit_query_param, minimum=1)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit) if self.max_limit else limit

    def get_offset(self, request: Request) -> int:
        offset = _number(request, self.offset_query_param, minimum=0)
        return offset or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            minimum = 1 if parameter["name"] == self.limit_query_param else 0
            parameter["schema"].update({"minimum": minimum, "maximum": MAX_NUMBER})
        return parameters


def _number(request: Request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if not raw:  # absent, or empty as a form sends an unfilled field: the default
        return None
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= MAX_NUMBER:
        raise InvalidInput(
            f"{name} must be a whole number from {minimum} to {MAX_NUMBER}.",
            fields={name: [f"A whole number from {minimum} to {MAX_NUMBER}."]},
        )
    return int(raw)
