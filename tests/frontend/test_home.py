"""The landing page and where its links lead."""

from __future__ import annotations

import re

import pytest


@pytest.mark.django_db
def test_every_link_on_the_home_page_leads_somewhere(client):
    page = client.get("/")
    assert page.status_code == 200
    links = re.findall(r'<a [^>]*href="([^"]+)"', page.content.decode())
    assert links
    for link in links:
        assert client.get(link, follow=True).status_code == 200, link
