"""The Content-Security-Policy header (django-csp), with the WebSocket origin of the request.

CSP Level 3 lets 'self' in connect-src match ws: and wss: on the page's own host, and
current Chromium, Firefox and Safari follow it; older browsers (Safari before 15.4) do not,
so the live pages would lose their sockets there. The origin is added explicitly, from the
host Django already validated against ALLOWED_HOSTS.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class ChorusCSPMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only or (parts.replace and "connect-src" in parts.replace):
            return parts
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        socket = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), socket]
        parts.update = update
        return parts
