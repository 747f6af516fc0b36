"""Request types for views that only authenticated users reach."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.request import Request

if TYPE_CHECKING:
    from backend.accounts.models import User


class AuthenticatedRequest(Request):
    """A DRF request whose permission classes (IsAuthenticated, the default) have passed."""

    user: User
