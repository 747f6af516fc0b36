"""Request types for views that only authenticated users reach."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.request import Request

if TYPE_CHECKING:
    from backend.accounts.models import ApiClient, User


class AuthenticatedRequest(Request):
    """A DRF request whose permission classes (IsAuthenticated, the default) have passed."""

    user: User


def api_client(request: Request) -> ApiClient | None:
    """The API client (key) a request came through; None for a signed-in session. The
    request's user is the acting user: the key's owner, or whom a trusted client acts for."""
    from backend.accounts.models import ApiClient

    return request.auth if isinstance(request.auth, ApiClient) else None
