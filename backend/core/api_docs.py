"""The API's Swagger UI under the site's Content-Security-Policy.

drf-spectacular's plain Swagger view puts its start-up script inline, which the policy
forbids; the split view serves that script from its own URL (`?script`), and our template
moves the page's few inline style rules into a stylesheet. Swagger UI's own stylesheet
draws its icons as data: SVG images, so this page alone also allows images from data:.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response


class ApiDocsView(SpectacularSwaggerSplitView):
    template_name = "core/swagger_ui.html"

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response._csp_update = {"img-src": ["data:"]}  # type: ignore[attr-defined]
        return response
