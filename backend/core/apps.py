from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks


class CoreConfig(AppConfig):
    name = "backend.core"
    label = "core"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        user_login_failed.connect(count_failed_login, dispatch_uid="chorus-login-failed")
        checks.register(check_rate_limits)


def count_failed_login(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    """Every failed password login (allauth, the API's and the admin's forms) counts against
    the account it named, so one account cannot be guessed at from many addresses."""
    from backend.core import ratelimit

    account = credentials.get("email") or credentials.get("username") or credentials.get("login")
    if isinstance(account, str) and account:
        ratelimit.consume("login_failed", account=account)


def check_rate_limits(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    from backend.core import ratelimit

    return [
        checks.Error(f"CHORUS_RATELIMITS: {problem}", id="chorus.E001")
        for problem in ratelimit.check_settings()
    ]
