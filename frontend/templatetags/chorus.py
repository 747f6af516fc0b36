from __future__ import annotations

from django import forms, template
from django.utils.safestring import SafeString

from frontend import text
from frontend.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(value: str) -> SafeString:
    return render_markdown(str(value or ""))


@register.filter
def task_title(task_type: str) -> str:
    return str(text.TASK_TITLES.get(task_type, task_type))


@register.filter
def state_name(state: str) -> str:
    return str(text.TREE_STATES.get(state, state))


@register.filter
def role_name(role: str) -> str:
    return str(text.ROLES.get(role, role))


@register.filter
def emoji_glyph(name: str) -> str:
    return text.EMOJI_GLYPHS.get(name, name)


@register.filter
def lang_name(code: str) -> str:
    return str(text.DATA_LANGUAGES.get(code, code))


@register.filter
def get_item(mapping: dict, key: str) -> object:
    return mapping.get(key) if mapping else None


@register.filter
def bound(form: forms.Form, name: str) -> forms.BoundField:
    return form[name]


@register.filter
def auto_report(report: object) -> str:
    """What auto-moderation found or did, for a report it filed (no reporter)."""
    details = getattr(report, "details", None) or {}
    if details.get("pii"):
        kinds = ", ".join(str(text.PII_KINDS.get(kind, kind)) for kind in details["pii"])
        return str(text.AUTO_REPORT["pii"]).format(kinds=kinds)
    if details.get("action"):
        template_text = text.AUTO_REPORT.get(details["action"], text.AUTO_REPORT["auto_flag"])
        return str(template_text % {"count": details.get("count", 0)})
    return ""
