from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from backend.accounts.models import ApiClient, Role, User
from backend.core.errors import InvalidInput

KEY_PREFIX = "chorus"


def hash_api_key(key: str) -> str:
    # Keys are 256-bit random strings, so a fast hash is enough (nothing to brute-force).
    return hashlib.sha256(key.encode()).hexdigest()


def split_api_key(key: str) -> tuple[str, str] | None:
    """'chorus_<prefix>_<secret>' -> (prefix, secret), or None if it is not of that form."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


@transaction.atomic
def create_api_client(
    *, owner: User, name: str, can_act_for_users: bool = False
) -> tuple[ApiClient, str]:
    """Create a client and return it with its key; the key is not stored and shown only now."""
    if not name.strip():
        raise InvalidInput("An API client needs a name.", fields={"name": ["Required."]})
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    client = ApiClient.objects.create(
        name=name.strip(),
        owner=owner,
        key_prefix=prefix,
        key_hash=hash_api_key(key),
        can_act_for_users=can_act_for_users,
    )
    return client, key


def revoke_api_client(*, client: ApiClient) -> None:
    ApiClient.objects.filter(pk=client.pk, revoked_at=None).update(revoked_at=timezone.now())


def create_user(
    *,
    username: str,
    password: str | None = None,
    display_name: str = "",
    languages: list[str] | None = None,
    role: str = Role.VOLUNTEER,
    email: str = "",
    accepted_terms_version: int | None = None,
) -> User:
    user = User(
        username=username,
        email=email,
        display_name=display_name,
        languages=languages or ["en"],
        role=role,
        accepted_terms_version=accepted_terms_version,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def update_profile(
    *,
    user: User,
    display_name: str | None = None,
    languages: list[str] | None = None,
    show_on_leaderboard: bool | None = None,
) -> User:
    fields = []
    if display_name is not None:
        user.display_name = display_name.strip()
        fields.append("display_name")
    if languages is not None:
        if not languages:
            raise InvalidInput(
                "Choose at least one language.", fields={"languages": ["May not be empty."]}
            )
        user.languages = list(dict.fromkeys(languages))
        fields.append("languages")
    if show_on_leaderboard is not None:
        user.show_on_leaderboard = show_on_leaderboard
        fields.append("show_on_leaderboard")
    if fields:
        user.save(update_fields=fields)
    return user
