"""API-key authentication: `Authorization: Bearer chorus_<prefix>_<secret>`."""

from __future__ import annotations

import hmac

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from backend.accounts.models import ApiClient, User
from backend.accounts.services import hash_api_key, split_api_key

ACT_FOR_HEADER = "HTTP_X_CHORUS_USER"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiClient] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(self.keyword + " "):
            return None
        parsed = split_api_key(header[len(self.keyword) + 1 :].strip())
        if parsed is None:
            raise exceptions.AuthenticationFailed("Malformed API key.")
        prefix, _ = parsed
        # One query: the client and its owner together.
        try:
            client = ApiClient.objects.select_related("owner").get(
                key_prefix=prefix, revoked_at=None
            )
        except ApiClient.DoesNotExist:
            client = None
        key = header[len(self.keyword) + 1 :].strip()
        if client is None or not hmac.compare_digest(client.key_hash, hash_api_key(key)):
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        user = client.owner
        if not user.is_active:
            raise exceptions.AuthenticationFailed("The key's owner account is inactive.")
        acting = request.META.get(ACT_FOR_HEADER)
        if acting and acting != user.username:
            if not client.can_act_for_users:
                raise exceptions.PermissionDenied("This API client may not act for other users.")
            named = User.objects.filter(username=acting).first()
            if named is None:
                raise exceptions.AuthenticationFailed(f"No user named {acting!r}.")
            user = named
        if not user.is_active:
            raise exceptions.AuthenticationFailed("This account is inactive.")
        return user, client

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "backend.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key `chorus_<prefix>_<secret>`. Trusted clients may add "
            "`X-Chorus-User: <username>` to act for a user.",
        }
