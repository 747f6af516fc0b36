"""The leaderboard page and the volunteer's points on the dashboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from django.test import Client
from django.urls import reverse

from backend.accounts.models import User
from backend.community import services
from backend.community.points import Kind
from backend.community.services import Award
from tests.frontend.conftest import make_volunteer

pytestmark = pytest.mark.django_db


def give(user: User, value: int, *, lang: str = "en", kind: Kind = Kind.REPLY) -> None:
    services.store_awards([Award(user.pk, lang, kind, value, uuid4(), datetime.now(UTC))])


def rows(page: str) -> list[str]:
    return re.findall(r'<tr[^>]*data-user="[^"]+"', page)


def test_the_leaderboard_lists_volunteers_by_points_with_the_formula(
    newbie_client: Client, newbie: User
) -> None:
    ann = make_volunteer("ann")
    give(ann, 7)
    give(ann, 3, kind=Kind.ACCEPTED)
    give(newbie, 4)
    page = newbie_client.get(reverse("leaderboard")).content.decode()
    names = [n.strip() for n in re.findall(r"<th scope=\"row\">([^<]+)", page)]
    assert names[:2] == [ann.public_name, newbie.public_name]
    assert 'class="me"' in page  # the reader's own row stands out
    assert "How points are counted" in page
    assert "Reply as the assistant" in page
    assert 'data-kind="accepted">3<' in page
    assert re.search(r"data-my-points>4<", page)
    assert 'aria-current="page">This week<' in page


def test_periods_and_languages_are_chosen_with_links_and_a_menu(
    newbie_client: Client, newbie: User
) -> None:
    give(newbie, 5, lang="de")
    german = newbie_client.get(reverse("leaderboard"), {"period": "all", "lang": "de"})
    page = german.content.decode()
    assert 'aria-current="page">All time<' in page
    assert re.search(r'<option value="de" selected>', page)
    assert len(rows(page)) == 1
    english = newbie_client.get(reverse("leaderboard"), {"period": "day", "lang": "en"})
    assert rows(english.content.decode()) == []
    assert "No points in this period yet" in english.content.decode()
    # Unknown choices fall back to this week in every language.
    odd = newbie_client.get(reverse("leaderboard"), {"period": "year", "lang": "xx"})
    assert odd.status_code == 200
    assert 'aria-current="page">This week<' in odd.content.decode()


def test_hidden_volunteers_are_not_listed_but_see_their_own_points(
    newbie_client: Client, newbie: User
) -> None:
    newbie.show_on_leaderboard = False
    newbie.save()
    give(newbie, 9)
    banned = make_volunteer("troll")
    banned.is_banned = True
    banned.save()
    give(banned, 50)
    page = newbie_client.get(reverse("leaderboard")).content.decode()
    assert rows(page) == []
    assert re.search(r"data-my-points>9<", page)
    assert "data-hidden" in page
    assert banned.public_name not in page


def test_the_leaderboard_takes_a_bounded_number_of_queries(
    newbie_client: Client, newbie: User, django_assert_max_num_queries
) -> None:
    for i in range(30):
        give(make_volunteer(f"v{i}"), i + 1)
    give(newbie, 3)
    # session, user, the board (one query with the names), the reader's standing
    with django_assert_max_num_queries(4):
        response = newbie_client.get(reverse("leaderboard"), {"period": "all"})
    assert len(rows(response.content.decode())) == 31


def test_the_leaderboard_is_for_signed_in_volunteers(client: Client) -> None:
    response = client.get(reverse("leaderboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_the_leaderboard_speaks_german(newbie_client: Client, newbie: User) -> None:
    newbie.ui_language = "de"
    newbie.save()
    give(newbie, 2)
    page = newbie_client.get(reverse("leaderboard"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Bestenliste" in page
    assert "Wie Punkte gezählt werden" in page


def test_the_dashboard_shows_points_and_the_rank_by_points(
    newbie_client: Client, newbie: User
) -> None:
    give(make_volunteer("ann"), 10)
    give(newbie, 4)
    page = newbie_client.get(reverse("dashboard")).content.decode()
    assert re.search(r'data-stat="points">4<', page)
    assert re.search(r'data-stat="rank">#2<', page)
    assert 'href="/leaderboard/?period=all"' in page
