from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def chorus(request: HttpRequest) -> dict[str, object]:
    """What the page layout needs on every page: the interface languages for the switcher."""
    return {"ui_languages": settings.LANGUAGES}
