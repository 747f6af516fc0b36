"""The volunteer pages through Django's test client: access rules, every task type, forms."""

from __future__ import annotations

import json
import re
from uuid import uuid4

import pytest
from django.test import Client
from django.urls import reverse

from backend.accounts.models import User
from backend.accounts.services import create_user
from backend.moderation.models import Report
from backend.tasks.models import Task, TaskStatus
from backend.trees.models import Message, Ranking, Reaction, Review
from tests.factories import MessageFactory
from tests.frontend.conftest import PASSWORD, make_volunteer

pytestmark = pytest.mark.django_db


def start(client: Client, task_type: str, lang: str = "en") -> Task:
    response = client.post(reverse("start_task"), {"type": task_type, "lang": lang})
    assert response.status_code == 302
    match = re.fullmatch(r"/tasks/([0-9a-f-]+)/", response["Location"])
    assert match, f"no {task_type} task: landed on {response['Location']}"
    return Task.objects.get(pk=match.group(1))


# --- Who may see what ------------------------------------------------------------------------


def test_pages_for_volunteers_send_anonymous_visitors_to_log_in(client: Client) -> None:
    for name in ("dashboard", "trees", "profile", "tutorial"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


def test_public_pages_render_for_anyone(client: Client) -> None:
    for url in ("/", "/guidelines/", "/terms/", "/accounts/login/", "/accounts/signup/"):
        assert client.get(url).status_code == 200, url


def test_every_page_links_the_site_icon_and_favicon_ico_leads_to_it(client: Client) -> None:
    for url in ("/", "/terms/", "/accounts/login/", "/does-not-exist/"):
        page = client.get(url).content.decode()
        match = re.search(r'<link rel="icon" href="([^"]+\.svg)"', page)
        assert match, url
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == match.group(1)


def test_signing_up_asks_for_consent_and_languages(client: Client) -> None:
    form = {
        "email": "new@example.org",
        "username": "newcomer",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "languages": ["de", "en"],
    }
    response = client.post(reverse("account_signup"), form)
    assert response.status_code == 200  # refused: consent missing
    assert not User.objects.filter(username="newcomer").exists()

    response = client.post(
        reverse("account_signup"), {**form, "accept_terms": "on", "accept_data_use": "on"}
    )
    assert response.status_code == 302
    user = User.objects.get(username="newcomer")
    assert user.languages == ["de", "en"]
    assert user.accepted_terms_version == 1
    # Signed in, and the first stop before any task is the tutorial.
    response = client.get(reverse("dashboard"))
    assert response["Location"].startswith(reverse("tutorial"))


def test_new_terms_are_asked_for_again_before_the_next_task(
    newbie_client: Client, newbie: User, settings
) -> None:
    assert newbie_client.get(reverse("dashboard")).status_code == 200
    settings.CHORUS_TERMS_VERSION = 2
    response = newbie_client.post(reverse("start_task"), {"type": "random", "lang": "en"})
    assert response["Location"].startswith(reverse("terms"))
    page = newbie_client.get(response["Location"])
    assert b"The terms changed" in page.content
    assert newbie_client.post(reverse("terms"), {"accept_terms": "on"}).status_code == 200
    newbie.refresh_from_db()
    assert newbie.accepted_terms_version == 1
    response = newbie_client.post(
        reverse("terms") + "?next=/dashboard/", {"accept_terms": "on", "accept_data_use": "on"}
    )
    assert response["Location"] == "/dashboard/"
    newbie.refresh_from_db()
    assert newbie.accepted_terms_version == 2


def test_the_terms_page_says_nothing_changed_to_who_accepted_the_current_version(
    newbie_client: Client, settings
) -> None:
    page = newbie_client.get(reverse("terms"))
    assert b"The terms changed" not in page.content
    german = newbie_client.get(reverse("terms"), headers={"accept-language": "de"})
    assert "Bedingungen und Datennutzung" in german.content.decode()
    assert "Die Bedingungen haben sich" not in german.content.decode()
    settings.CHORUS_TERMS_VERSION = 2
    page = newbie_client.get(reverse("terms"))
    assert b"version 1; now version 2" in page.content


def test_a_banned_volunteer_gets_no_task_pages(newbie_client: Client, newbie: User) -> None:
    newbie.is_banned = True
    newbie.save()
    assert newbie_client.get(reverse("dashboard")).status_code == 403
    assert newbie_client.post(reverse("start_task"), {"type": "random"}).status_code == 403


def test_nobody_opens_another_volunteers_task(open_work, newbie_client: Client) -> None:
    task = start(newbie_client, "assistant_reply")
    other = Client()
    other.force_login(make_volunteer("other"))
    assert other.get(reverse("task", args=[task.id])).status_code == 404
    response = other.post(reverse("task", args=[task.id]), {"text": "hijack", "action": "submit"})
    assert response.status_code == 404
    assert other.post(reverse("skip_task", args=[task.id]), {"reason": "other"}).status_code == 404
    assert other.get(reverse("task", args=[uuid4()])).status_code == 404
    task.refresh_from_db()
    assert task.status == TaskStatus.LEASED


def test_forms_refuse_posts_without_the_csrf_token(open_work, newbie: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(newbie)
    response = client.post(reverse("start_task"), {"type": "assistant_reply", "lang": "en"})
    assert response.status_code == 403
    assert not Task.objects.filter(user=newbie).exists()
    page = client.get(reverse("dashboard"))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    response = client.post(
        reverse("start_task"),
        {"type": "assistant_reply", "lang": "en", "csrfmiddlewaretoken": token.decode()},
    )
    assert response.status_code == 302
    assert Task.objects.filter(user=newbie).count() == 1


# --- Onboarding ------------------------------------------------------------------------------


def test_the_tutorial_gives_feedback_and_must_be_finished_before_tasks(client: Client) -> None:
    user = create_user(username="fresh", password=PASSWORD, accepted_terms_version=1)
    client.force_login(user)
    assert client.get(reverse("dashboard"))["Location"].startswith(reverse("tutorial"))

    wrong = client.post(reverse("tutorial"), {"spam": "0"})
    assert b"Not quite." in wrong.content
    right = client.post(reverse("tutorial"), {"spam": "1"})
    assert b"Correct!" in right.content

    wrong = client.post(
        reverse("tutorial"), {"position-0": "2", "position-1": "1", "position-2": "3"}
    )
    assert b"eight legs" in wrong.content
    client.post(reverse("tutorial"), {"position-0": "3", "position-1": "1", "position-2": "2"})

    assert b"Not quite." in client.post(reverse("tutorial"), {"text": "A poem."}).content
    reply = "A haiku is a Japanese poem of three lines with five, seven and five syllables."
    assert b"Our example answer" in client.post(reverse("tutorial"), {"text": reply}).content
    done = client.get(reverse("tutorial"))
    assert done["Location"] == reverse("dashboard")
    user.refresh_from_db()
    assert user.tutorial_completed_at is not None
    assert client.get(reverse("dashboard")).status_code == 200


# --- Dashboard -------------------------------------------------------------------------------


def test_the_dashboard_counts_tasks_per_type_and_says_why_none(
    open_work, newbie_client: Client
) -> None:
    page = newbie_client.get(reverse("dashboard"))
    counts = dict(
        re.findall(
            rb'data-task-type="(\w+)">\s*<th scope="row">[^<]*</th>\s*'
            rb"<td class=\"num\" data-count>(\d+)",
            page.content,
        )
    )
    assert {k.decode(): int(v) for k, v in counts.items()} == {
        "initial_prompt": 9,  # room left in the prompt queue (one of 10 is in review)
        "assistant_reply": 1,
        "prompter_reply": 1,
        "label_initial_prompt": 1,
        "label_assistant_reply": 1,
        "label_prompter_reply": 1,
        "rank_assistant_replies": 1,
        "rank_prompter_replies": 1,
    }
    # ann's own prompt cannot be reviewed by ann: the page says why.
    ann = Client()
    ann.force_login(open_work.users["ann"])
    User.objects.filter(pk=open_work.users["ann"].pk).update(
        tutorial_completed_at="2026-01-01T00:00Z"
    )
    page = ann.get(reverse("dashboard")).content.decode()
    assert "your own messages or ones you have done already" in page


def test_the_dashboard_shows_the_volunteers_own_figures(open_work, newbie_client: Client) -> None:
    task = start(newbie_client, "label_initial_prompt")
    newbie_client.post(
        reverse("task", args=[task.id]), {"spam": "0", "lang_mismatch": "", "key": "k1"}
    )
    page = newbie_client.get(reverse("dashboard")).content.decode()
    assert re.search(r'data-stat="tasks">1<', page)
    assert re.search(r'data-stat="streak">1<', page)
    assert re.search(r'data-stat="rank">#\d+<', page)


def test_the_dashboard_counts_one_of_a_kind_in_the_singular(
    newbie_client: Client, newbie: User
) -> None:
    prompt = MessageFactory(author=newbie)
    Ranking.objects.create(parent=MessageFactory(), user=newbie, ordered_ids=[])
    Task.objects.create(
        type="initial_prompt",
        lang="en",
        user=newbie,
        status=TaskStatus.SKIPPED,
        expires_at=prompt.created_at,
    )
    page = newbie_client.get(reverse("dashboard")).content.decode()
    assert "1 message written, 0 reviews, 1 ranking, 1 skipped." in page
    page = newbie_client.get(reverse("dashboard"), headers={"accept-language": "de"})
    assert "1 Nachricht geschrieben, 0 Prüfungen, 1 Rangfolge, 1 übersprungen." in (
        page.content.decode()
    )


# --- Every task type -------------------------------------------------------------------------


@pytest.mark.parametrize("task_type", ["initial_prompt", "assistant_reply", "prompter_reply"])
def test_writing_goes_through_a_review_step_before_it_is_stored(
    open_work, newbie_client: Client, newbie: User, task_type: str
) -> None:
    task = start(newbie_client, task_type)
    url = reverse("task", args=[task.id])
    page = newbie_client.get(url)
    assert b"Reply to this" in page.content or task_type == "initial_prompt"

    text = "Here is **my** answer with <b>tags</b>."
    review = newbie_client.post(url, {"text": text, "action": "review", "key": "k"})
    assert review.status_code == 200
    assert b"<strong>my</strong>" in review.content
    assert b"&lt;b&gt;tags&lt;/b&gt;" in review.content
    assert not Message.objects.filter(author=newbie).exists()

    done = newbie_client.post(url, {"text": text, "action": "submit", "key": "k"})
    assert done.status_code == 302
    assert done["Location"] == f"/dashboard/?done={task.id}"
    message = Message.objects.get(author=newbie)
    assert message.text == text
    # A second click on Submit replays the first submission instead of failing.
    again = newbie_client.post(url, {"text": text, "action": "submit", "key": "k"})
    assert again.status_code == 302
    assert Message.objects.filter(author=newbie).count() == 1


def test_writing_too_much_or_nothing_is_refused_on_the_page(
    open_work, newbie_client: Client, settings
) -> None:
    task = start(newbie_client, "assistant_reply")
    url = reverse("task", args=[task.id])
    empty = newbie_client.post(url, {"text": "   ", "action": "submit"})
    assert empty.status_code == 400
    long = newbie_client.post(
        url, {"text": "x" * (settings.CHORUS_MAX_TEXT_LENGTH + 1), "action": "submit"}
    )
    assert long.status_code == 400
    assert b"at most" in long.content.lower()
    assert not Message.objects.filter(
        parent=open_work.growing_root, author__username="newbie"
    ).exists()


@pytest.mark.parametrize(
    "task_type", ["label_initial_prompt", "label_assistant_reply", "label_prompter_reply"]
)
def test_reviews_enforce_the_mandatory_labels(
    open_work, newbie_client: Client, newbie: User, task_type: str
) -> None:
    task = start(newbie_client, task_type)
    url = reverse("task", args=[task.id])
    page = newbie_client.get(url).content.decode()
    assert "Is this spam?" in page
    assert "Wrong language" in page
    assert ("Helpfulness" in page) == (task_type == "label_assistant_reply")

    missing = newbie_client.post(url, {"quality": "0.75"})
    assert missing.status_code == 400
    assert not Review.objects.filter(user=newbie).exists()

    done = newbie_client.post(url, {"spam": "0", "pii": "on", "quality": "0.75", "key": "r"})
    assert done.status_code == 302
    review = Review.objects.get(user=newbie)
    assert review.values == {
        **{name: 0.0 for name in review.values if name not in ("pii", "quality")},
        "pii": 1.0,
        "quality": 0.75,
    }
    assert review.values["spam"] == 0.0
    assert review.values["lang_mismatch"] == 0.0


@pytest.mark.parametrize("task_type", ["rank_assistant_replies", "rank_prompter_replies"])
def test_ranking_orders_the_replies_by_their_places(
    open_work, newbie_client: Client, newbie: User, task_type: str
) -> None:
    task = start(newbie_client, task_type)
    url = reverse("task", args=[task.id])
    assert newbie_client.get(url).status_code == 200
    first, second = task.offered_ids
    clash = newbie_client.post(url, {f"position-{first}": "1", f"position-{second}": "1"})
    assert clash.status_code == 400
    done = newbie_client.post(
        url, {f"position-{first}": "2", f"position-{second}": "1", "key": "rank"}
    )
    assert done.status_code == 302
    assert Ranking.objects.get(user=newbie).ordered_ids == [second, first]


def test_all_replies_can_be_judged_unacceptable(
    open_work, newbie_client: Client, newbie: User
) -> None:
    task = start(newbie_client, "rank_assistant_replies")
    newbie_client.post(reverse("task", args=[task.id]), {"not_rankable": "1"})
    ranking = Ranking.objects.get(user=newbie)
    assert ranking.not_rankable
    assert ranking.ordered_ids == []


def test_model_written_replies_carry_a_badge_only_where_policy_reveals_it(
    open_work, newbie_client: Client, settings
) -> None:
    task = start(newbie_client, "rank_assistant_replies")
    Message.objects.filter(pk=task.offered_ids[0]).update(synthetic=True, model_name="smollm2")
    url = reverse("task", args=[task.id])
    assert b"model-written" not in newbie_client.get(url).content
    settings.CHORUS_REVEAL_SYNTHETIC = True
    assert newbie_client.get(url).content.count(b"model-written") == 1


def test_a_task_can_be_skipped_with_a_reason(open_work, newbie_client: Client) -> None:
    task = start(newbie_client, "assistant_reply")
    response = newbie_client.post(
        reverse("skip_task", args=[task.id]), {"reason": "not_knowledgeable", "note": "plants"}
    )
    assert response["Location"] == reverse("dashboard")
    task.refresh_from_db()
    assert (task.status, task.skip_reason, task.skip_note) == (
        "skipped",
        "not_knowledgeable",
        "plants",
    )
    # The same slot is not offered again.
    response = newbie_client.post(reverse("start_task"), {"type": "assistant_reply", "lang": "en"})
    assert response["Location"] == reverse("dashboard")


def test_a_refused_skip_says_why_in_the_open_skip_panel_keeping_the_reason(
    open_work, newbie_client: Client
) -> None:
    task = start(newbie_client, "assistant_reply")
    response = newbie_client.post(
        reverse("skip_task", args=[task.id]), {"reason": "too_long", "note": "n" * 501}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert '<details class="skip-panel" open>' in page
    assert "at most 500 characters" in page
    assert "Choose a reason to skip." not in page
    assert '<option value="too_long" selected>' in page
    task.refresh_from_db()
    assert task.status == TaskStatus.LEASED

    response = newbie_client.post(reverse("skip_task", args=[task.id]), {"note": "plants"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose a reason to skip." in page
    assert 'value="plants"' in page
    task.refresh_from_db()
    assert task.status == TaskStatus.LEASED


def test_a_message_can_be_reported_from_a_task_page(
    open_work, newbie_client: Client, newbie: User
) -> None:
    task = start(newbie_client, "label_assistant_reply")
    task_url = reverse("task", args=[task.id])
    page = newbie_client.get(task_url).content.decode()
    report_url = reverse("report", args=[task.slot_id])
    assert report_url in page
    # The reply is not public until reviewed: only the task opens it for reporting.
    assert newbie_client.get(report_url).status_code == 404
    report_url += f"?task={task.id}"
    assert f"&amp;task={task.id}" in page
    form = newbie_client.get(report_url)
    assert form.status_code == 200
    response = newbie_client.post(
        report_url, {"reason": "incorrect", "text": "wrong", "next": task_url}
    )
    assert response["Location"] == task_url
    report = Report.objects.get(reporter=newbie)
    assert (report.message_id, report.reason) == (task.slot_id, "incorrect")
    # A second report of the same message is answered kindly, not with an error page.
    again = newbie_client.post(report_url, {"reason": "spam", "next": "https://evil.example/"})
    assert again["Location"].startswith(reverse("tree", args=[task.tree_id]))
    assert Report.objects.filter(reporter=newbie).count() == 1


def test_task_pages_take_a_bounded_number_of_queries(
    open_work, newbie_client: Client, django_assert_max_num_queries
) -> None:
    for task_type in (
        "assistant_reply",
        "label_assistant_reply",
        "rank_assistant_replies",
        "initial_prompt",
    ):
        task = start(newbie_client, task_type)
        # session, user, task, conversation (with the replies to rank)
        with django_assert_max_num_queries(4):
            assert newbie_client.get(reverse("task", args=[task.id])).status_code == 200


# --- Markdown --------------------------------------------------------------------------------


def test_the_preview_renders_markdown_and_drops_anything_executable(newbie_client: Client) -> None:
    hostile = (
        "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[click](javascript:alert(1)) [ok](https://example.org)\n\n```\ncode\n```"
    )
    html = newbie_client.post(reverse("preview"), {"text": hostile}).content.decode()
    assert "<h1>Title</h1>" in html
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html  # shown as text
    assert 'href="javascript' not in html
    assert 'href="https://example.org"' in html
    assert 'rel="nofollow noopener noreferrer"' in html
    assert "<pre><code>code" in html


def test_the_preview_is_only_for_volunteers(client: Client) -> None:
    assert client.post(reverse("preview"), {"text": "x"}).status_code == 302


@pytest.mark.parametrize(
    ("url", "back"),
    [
        ("/tasks/start/", "/dashboard/"),
        ("/language/", "/"),
        ("/preview/", "/"),
        ("/settings/keys/00000000-0000-4000-8000-000000000001/revoke/", "/settings/"),
    ],
)
def test_a_form_address_opened_in_the_browser_says_so_on_a_page(
    newbie_client: Client, url: str, back: str
) -> None:
    response = newbie_client.get(url)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    page = response.content.decode()
    assert "<title>" in page  # the site's page, not an empty answer
    assert "it cannot be opened as a page" in page
    assert f'href="{back}"' in page


def test_a_form_address_of_a_task_opened_in_the_browser_leads_to_the_task(
    open_work, newbie_client: Client
) -> None:
    task = start(newbie_client, "assistant_reply")
    response = newbie_client.get(reverse("skip_task", args=[task.id]))
    assert response["Location"] == reverse("task", args=[task.id])
    task.refresh_from_db()
    assert task.status == TaskStatus.LEASED  # nothing was skipped


def test_the_api_keeps_its_own_answer_to_a_method_it_does_not_take(
    newbie_client: Client,
) -> None:
    response = newbie_client.get(f"/api/v1/tasks/{uuid4()}/skip/")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "method_not_allowed"


# --- Trees, reactions, settings --------------------------------------------------------------


def test_the_tree_explorer_shows_visible_trees_and_takes_reactions(
    open_work, newbie_client: Client, newbie: User
) -> None:
    listing = newbie_client.get(reverse("trees"), {"state": "ranking"}).content.decode()
    tree_url = reverse("tree", args=[open_work.ranking_tree.id])
    assert tree_url in listing
    assert reverse("tree", args=[open_work.growing_root.tree_id]) not in listing
    page = newbie_client.get(tree_url)
    assert page.status_code == 200
    root = Message.objects.get(tree=open_work.ranking_tree, parent=None)
    response = newbie_client.post(
        reverse("react", args=[root.id]), {"emoji": "+1", "on": "1"}, HTTP_ACCEPT="application/json"
    )
    assert response.json() == {"emojis": {"+1": 1}, "on": True}
    assert Reaction.objects.filter(user=newbie, message=root, emoji="+1").exists()
    bad = newbie_client.post(
        reverse("react", args=[root.id]), {"emoji": "<b>"}, HTTP_ACCEPT="application/json"
    )
    assert bad.status_code == 400
    assert newbie_client.get(reverse("tree", args=[uuid4()])).status_code == 404


def test_settings_change_name_languages_and_interface_language(
    newbie_client: Client, newbie: User
) -> None:
    response = newbie_client.post(
        reverse("profile"),
        {
            "display_name": "Nina",
            "languages": ["de", "en"],
            "ui_language": "de",
            "show_on_leaderboard": "",
        },
    )
    assert response.status_code == 302
    newbie.refresh_from_db()
    assert (newbie.display_name, newbie.languages, newbie.ui_language) == (
        "Nina",
        ["de", "en"],
        "de",
    )
    assert newbie.show_on_leaderboard is False
    page = newbie_client.get(reverse("dashboard"))
    assert page["Content-Language"] == "de"
    assert "Hallo, Nina" in page.content.decode()
    refused = newbie_client.post(reverse("profile"), {"languages": [], "ui_language": "xx"})
    assert refused.status_code == 200
    assert b"errorlist" in refused.content


def test_the_language_switcher_remembers_the_choice(newbie_client: Client, newbie: User) -> None:
    newbie_client.post(reverse("set_language"), {"language": "de", "next": "/dashboard/"})
    newbie.refresh_from_db()
    assert newbie.ui_language == "de"
    assert b"Aufgaben" in newbie_client.get(reverse("dashboard")).content


def test_volunteers_download_what_they_contributed(
    open_work, newbie_client: Client, newbie: User
) -> None:
    task = start(newbie_client, "assistant_reply")
    newbie_client.post(reverse("task", args=[task.id]), {"text": "Mine.", "action": "submit"})
    response = newbie_client.get(reverse("contributions"))
    assert response["Content-Disposition"].startswith("attachment")
    data = json.loads(b"".join(response.streaming_content))
    assert data["user"]["username"] == "newbie"
    assert [m["text"] for m in data["messages"]] == ["Mine."]
    assert set(data) == {"user", "messages", "reviews", "rankings", "reactions", "reports"}


def test_deleting_an_account_forgets_the_person_and_keeps_the_trees(
    open_work, newbie_client: Client, newbie: User
) -> None:
    task = start(newbie_client, "assistant_reply")
    newbie_client.post(reverse("task", args=[task.id]), {"text": "Mine.", "action": "submit"})
    start(newbie_client, "label_initial_prompt")  # left open
    assert newbie_client.post(reverse("delete_account"), {"confirm": "nope"}).status_code == 400
    response = newbie_client.post(reverse("delete_account"), {"confirm": "newbie"})
    assert response["Location"] == reverse("home")
    newbie.refresh_from_db()
    assert newbie.username.startswith("deleted-")
    assert newbie.email == ""
    assert not newbie.is_active
    assert newbie.data_consent_withdrawn_at is not None
    assert Message.objects.get(author=newbie).text == "Mine."
    assert not Task.objects.filter(user=newbie, status=TaskStatus.LEASED).exists()
    assert not Client().login(username="newbie", password=PASSWORD)


def test_a_forgotten_password_is_reset_by_mail(newbie: User, mailoutbox) -> None:
    client = Client()
    response = client.post(reverse("account_reset_password"), {"email": "newbie@example.org"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+/)", mailoutbox[0].body)
    assert link, mailoutbox[0].body
    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200
    new = "another long password 43"
    done = client.post(form.redirect_chain[-1][0], {"password1": new, "password2": new})
    assert done.status_code == 302
    assert Client().login(username="newbie", password=new)


def test_the_dashboard_takes_a_bounded_number_of_queries(
    open_work, newbie_client: Client, newbie: User, django_assert_max_num_queries
) -> None:
    # session, user, then per language: availability (1) and the prompt room (2); the
    # volunteer's figures (5) and rank (1)
    with django_assert_max_num_queries(11):
        assert newbie_client.get(reverse("dashboard")).status_code == 200
    newbie.languages = ["en", "de"]
    newbie.save()
    with django_assert_max_num_queries(14):
        assert newbie_client.get(reverse("dashboard")).status_code == 200
