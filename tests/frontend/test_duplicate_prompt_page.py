"""The write page refuses a near-duplicate first prompt, keeps the text and points to the
existing prompt where the volunteer may read it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from backend.accounts.models import User
from backend.tasks.models import TaskStatus
from backend.trees.models import Message
from tests.frontend.test_pages import start

pytestmark = pytest.mark.django_db


def test_a_duplicate_prompt_is_refused_with_a_link_and_the_text_kept(
    open_work, newbie_client: Client, newbie: User
) -> None:
    task = start(newbie_client, "initial_prompt")
    url = reverse("task", args=[task.id])
    text = "how do I keep BASIL alive on my windowsill??"

    page = newbie_client.post(url, {"text": text, "action": "submit", "key": "k1"})

    assert page.status_code == 409
    root = open_work.growing_root
    link = f'href="{reverse("tree", args=[root.tree_id])}#m-{root.id}"'
    assert link.encode() in page.content
    assert b"data-duplicate" in page.content
    assert text.encode() in page.content  # the volunteer's text, ready to be changed
    assert not Message.objects.filter(author=newbie).exists()
    task.refresh_from_db()
    assert task.status == TaskStatus.LEASED
    # The rewritten prompt goes through on the same task.
    done = newbie_client.post(
        url, {"text": "How do I grow basil from seed?", "action": "submit", "key": "k2"}
    )
    assert done.status_code == 302
    assert Message.objects.filter(author=newbie, parent=None).count() == 1


def test_a_duplicate_of_a_prompt_still_in_review_is_refused_without_revealing_it(
    open_work, newbie_client: Client
) -> None:
    task = start(newbie_client, "initial_prompt")
    url = reverse("task", args=[task.id])
    text = "Explain what a prime number is to a 10 year old"

    page = newbie_client.post(url, {"text": text, "action": "submit", "key": "k1"})

    assert page.status_code == 409
    assert b"data-duplicate" in page.content
    assert b"waiting for review" in page.content
    assert b"/trees/" not in page.content.split(b"data-duplicate")[1].split(b"</div>")[0]


def test_moderators_see_what_auto_moderation_found_and_did(open_work, newbie_client) -> None:  # type: ignore[no-untyped-def]
    from backend.accounts.models import Role
    from backend.moderation import automod
    from backend.moderation.models import Action
    from backend.moderation.services import report_message
    from tests.frontend.conftest import make_volunteer

    root = open_work.growing_root
    automod.flag_personal_data(message=root, kinds=["email", "phone"])
    moderator = make_volunteer("mira")
    moderator.role = Role.MODERATOR
    moderator.save(update_fields=["role"])
    client = Client()
    client.force_login(moderator)

    queue = client.get(reverse("moderation_queue"))
    assert queue.status_code == 200
    assert b"auto-moderation" in queue.content
    assert b"email address, phone number" in queue.content

    # An automatically hidden message offers to keep it hidden or to restore it.
    answer = Message.objects.get(tree=root.tree, author=open_work.users["bea"])
    for name in ("r1", "r2", "r3"):
        report_message(message=answer, reporter=make_volunteer(name), reason="offensive")
    assert automod.check_message(message_id=answer.pk, trigger="red_flags") == Action.AUTO_HIDE
    queue = client.get(reverse("moderation_queue"))
    assert b"hidden automatically after 3 volunteers objected" in queue.content
    restore = reverse("moderation_message_action", args=[answer.pk, "undelete"])
    assert restore.encode() in queue.content


def test_an_automatic_report_counts_one_objection_in_the_singular(
    open_work, settings, client: Client
) -> None:
    from backend.accounts.models import Role
    from backend.moderation import automod
    from backend.moderation.models import Action
    from backend.moderation.services import report_message
    from tests.frontend.conftest import make_volunteer

    settings.CHORUS_AUTOMOD_RED_FLAGS = 1
    answer = Message.objects.get(tree=open_work.growing_root.tree, author=open_work.users["bea"])
    report_message(message=answer, reporter=make_volunteer("rae"), reason="offensive")
    assert automod.check_message(message_id=answer.pk, trigger="red_flags") == Action.AUTO_HIDE
    moderator = make_volunteer("mira")
    User.objects.filter(pk=moderator.pk).update(role=Role.MODERATOR)
    client.force_login(moderator)
    queue = client.get(reverse("moderation_queue")).content.decode()
    assert "hidden automatically after 1 volunteer objected;" in queue
    german = client.get(reverse("moderation_queue"), headers={"accept-language": "de"})
    assert "nachdem 1 freiwillige Person Einspruch erhoben hat" in german.content.decode()
