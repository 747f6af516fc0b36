from __future__ import annotations

import pytest
from django.test import Client

from backend.accounts.models import User
from backend.accounts.services import accept_terms, complete_tutorial, create_user
from tests.frontend.asgi_server import asgi_server  # noqa: F401 (a fixture)
from tests.frontend.scenario import QUICK_TREES, OpenWork, build_open_work

PASSWORD = "a long test password 42"


@pytest.fixture
def quick_trees(settings):  # type: ignore[no-untyped-def]
    settings.CHORUS_TREE = dict(QUICK_TREES)
    return settings.CHORUS_TREE


@pytest.fixture
def open_work(quick_trees) -> OpenWork:  # type: ignore[no-untyped-def]
    return build_open_work("en")


def make_volunteer(username: str = "newbie", languages: list[str] | None = None) -> User:
    user = create_user(
        username=username,
        password=PASSWORD,
        email=f"{username}@example.org",
        languages=languages or ["en"],
    )
    accept_terms(user=user)
    return complete_tutorial(user=user)


@pytest.fixture
def newbie(db) -> User:  # type: ignore[no-untyped-def]
    return make_volunteer()


@pytest.fixture
def newbie_client(newbie: User) -> Client:
    client = Client()
    client.force_login(newbie)
    return client


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    from tests.frontend.browser import launch

    yield from launch()


@pytest.fixture
def camera(request):  # type: ignore[no-untyped-def]
    from tests.frontend.browser import Camera

    return Camera(request.node.name)


def page_factory(browser, base_url: str, camera):  # type: ignore[no-untyped-def]
    """A factory of pages in fresh browser contexts (cookies, storage) on `base_url`."""
    contexts = []

    def open_page(*, locale: str = "en-GB", width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
        context = browser.new_context(
            base_url=base_url, locale=locale, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        for page in context.pages:
            camera.shoot(page, "at-the-end")
        context.close()


@pytest.fixture
def new_page(browser, live_server, camera):  # type: ignore[no-untyped-def]
    """Pages on Django's live server (HTTP only)."""
    yield from page_factory(browser, live_server.url, camera)


@pytest.fixture
def new_live_page(browser, asgi_server, camera):  # type: ignore[no-untyped-def]  # noqa: F811
    """Pages on the real ASGI application, WebSockets included."""
    yield from page_factory(browser, asgi_server.url, camera)
