"""DRF permissions on the users' roles."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from backend.core.errors import NotAllowed


class IsModerator(permissions.BasePermission):
    """Moderators and admins only, checked before the request body is read: anyone else
    gets 403 whatever they send, never a 400 about a body they may not send at all.

    Put it after IsAuthenticated, so a stranger gets 401 first. The services check the role
    again: this is the API's early answer, not the only guard.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user.is_moderator:  # type: ignore[union-attr]
            raise NotAllowed("Only moderators may do this.")
        return True


MODERATORS_ONLY = [permissions.IsAuthenticated, IsModerator]
