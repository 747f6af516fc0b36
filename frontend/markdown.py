"""Markdown for messages, rendered on the server and sanitised.

Volunteers write markdown; what comes back must never run in anyone's browser. Two layers:
markdown-it renders with raw HTML switched off (so `<script>` in a message is text), and
nh3 then keeps only the tags and attributes markdown itself produces, and only links to
http(s) and mail addresses, as a second line of defence.

No inline `style` survives either: the page's Content-Security-Policy blocks style
attributes, so table-column alignment (which markdown-it writes as `style="text-align:…"`)
becomes one of the stylesheet's `align-*` classes.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a", "img",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "code": {"class"},
}
ALIGNMENTS = ("left", "center", "right")
ALLOWED_CLASSES = {cell: {f"align-{side}" for side in ALIGNMENTS} for cell in ("th", "td")}
URL_SCHEMES = {"http", "https", "mailto"}


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )


def render_markdown(text: str) -> SafeString:
    parser = _parser()
    tokens = parser.parse(text)
    for token in tokens:
        if token.type in ("th_open", "td_open") and token.attrs.get("style"):
            side = str(token.attrs.pop("style")).removeprefix("text-align:")
            if side in ALIGNMENTS:
                token.attrSet("class", f"align-{side}")
    html = parser.renderer.render(tokens, parser.options, {})
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
