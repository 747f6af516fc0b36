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
