from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.accounts.models import ApiClient, Role, User
from backend.core import errors as problems
from backend.core.errors import Conflict, InvalidInput

KEY_PREFIX = "chorus"
MAX_NAME_LENGTH = 100
# Live (unrevoked) keys per person: enough for every bot one runs, few enough to review.
MAX_LIVE_KEYS = 20


def hash_api_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to guess, and
    # slow password hashing would cost every API request. A stolen table of hashes gives no
    # key back.
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
        raise InvalidInput("An API client needs a name.", fields={"name": [problems.REQUIRED]})
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise InvalidInput(
            "The name is too long.", fields={"name": [problems.at_most(MAX_NAME_LENGTH)]}
        )
    live = ApiClient.objects.filter(owner=owner, revoked_at=None).count()
    if live >= MAX_LIVE_KEYS:
        raise Conflict(
            f"You have {live} live API keys, the most there may be; revoke one first.",
            fields={"name": ["Too many live keys."]},
        )
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


def revoke_api_client(*, client: ApiClient) -> ApiClient:
    """Revoke the key for good; the next request with it is refused (keys are checked
    against the database on every request, nothing caches them)."""
    ApiClient.objects.filter(pk=client.pk, revoked_at=None).update(revoked_at=timezone.now())
    client.refresh_from_db(fields=["revoked_at"])
    return client


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
    ui_language: str | None = None,
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
    if ui_language is not None:
        if ui_language and ui_language not in dict(settings.LANGUAGES):
            raise InvalidInput(
                f"The interface is not available in {ui_language!r}.",
                fields={"ui_language": [problems.one_of(dict(settings.LANGUAGES))]},
            )
        user.ui_language = ui_language
        fields.append("ui_language")
    if fields:
        user.save(update_fields=fields)
    return user


def needs_terms(user: User) -> bool:
    """The user has not accepted the current terms and data-use consent."""
    current: int = settings.CHORUS_TERMS_VERSION
    return user.accepted_terms_version is None or user.accepted_terms_version < current


def accept_terms(*, user: User) -> User:
    user.accepted_terms_version = settings.CHORUS_TERMS_VERSION
    user.save(update_fields=["accepted_terms_version"])
    return user


def complete_tutorial(*, user: User) -> User:
    if user.tutorial_completed_at is None:
        user.tutorial_completed_at = timezone.now()
        user.save(update_fields=["tutorial_completed_at"])
    return user


@transaction.atomic
def delete_account(*, user: User) -> None:
    """Close the account for good and forget who it was.

    The row stays, emptied of personal data, because other people's replies, reviews and
    rankings build on this person's messages: those messages stay in their trees, shown
    without a name, and are left out of every dataset exported from now on (consent is
    withdrawn). Sign-in methods, API keys and open tasks go.
    """
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount

    from backend.tasks.models import Task, TaskStatus

    now = timezone.now()
    for task in Task.objects.filter(user=user, status=TaskStatus.LEASED).only("id"):
        from backend.tasks.services import skip_task

        skip_task(task_id=task.id, user=user, reason="other", note="account deleted")
    EmailAddress.objects.filter(user=user).delete()
    SocialAccount.objects.filter(user=user).delete()
    ApiClient.objects.filter(owner=user, revoked_at=None).update(revoked_at=now)
    user.username = f"deleted-{user.pk.hex}"
    user.email = ""
    user.first_name = user.last_name = ""
    user.display_name = ""
    user.is_active = False
    user.show_on_leaderboard = False
    user.set_unusable_password()
    user.data_consent_withdrawn_at = user.data_consent_withdrawn_at or now
    user.save()
