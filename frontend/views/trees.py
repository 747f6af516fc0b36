"""The tree explorer: read trees, react to messages, report them."""

from __future__ import annotations

from collections import defaultdict
from typing import cast
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backend.accounts.models import User
from backend.core.errors import ChorusError, Conflict, NotFound
from backend.moderation.services import report_message
from backend.tasks.selectors import access_reportable_message
from backend.trees import services as trees
from backend.trees.models import Emoji, Message, Reaction
from backend.trees.rules import State
from backend.trees.selectors import access_message, access_tree, visible_trees
from frontend import text
from frontend.access import error_text, volunteer_page
from frontend.forms import ReportForm
from frontend.views.pages import safe_next

TREES_PER_PAGE = 25


@volunteer_page(tutorial=False)
def tree_list(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    trees_qs = visible_trees(user)
    lang = request.GET.get("lang", "")
    state = request.GET.get("state", "")
    if lang in settings.CHORUS_LANGUAGES:
        trees_qs = trees_qs.filter(lang=lang)
    if state in {s.value for s in State}:
        trees_qs = trees_qs.filter(state=state)
    page = Paginator(trees_qs, TREES_PER_PAGE).get_page(request.GET.get("page"))
    roots = {
        root.tree_id: root
        for root in Message.objects.filter(tree__in=list(page.object_list), parent=None)
    }
    rows = [(tree, roots.get(tree.id)) for tree in page.object_list]
    return render(
        request,
        "frontend/trees/list.html",
        {
            "page": page,
            "rows": rows,
            "lang": lang,
            "state": state,
            "languages": settings.CHORUS_LANGUAGES,
            "states": text.TREE_STATES,
        },
    )


@volunteer_page(tutorial=False)
def tree_detail(request: HttpRequest, tree_id: UUID) -> HttpResponse:
    user = cast(User, request.user)
    try:
        tree, tree_messages = access_tree(user=user, tree_id=tree_id)
    except NotFound:
        raise Http404 from None
    children: dict[UUID | None, list[Message]] = defaultdict(list)
    for message in tree_messages:
        children[message.parent_id].append(message)
    mine = defaultdict(set)
    for message_id, emoji in Reaction.objects.filter(
        user=user, message__tree_id=tree.id
    ).values_list("message_id", "emoji"):
        mine[message_id].add(emoji)
    return render(
        request,
        "frontend/trees/detail.html",
        {
            "tree": tree,
            "roots": children[None],
            "children": dict(children),
            "my_reactions": dict(mine),
            "emojis": [
                (e.value, text.EMOJI_GLYPHS[e.value], text.EMOJI_NAMES[e.value]) for e in Emoji
            ],
        },
    )


def _message_or_404(request: HttpRequest, message_id: UUID) -> Message:
    try:
        return access_message(user=cast(User, request.user), message_id=message_id)
    except NotFound:
        raise Http404 from None


@require_POST
@volunteer_page(tutorial=False)
def react(request: HttpRequest, message_id: UUID) -> HttpResponse:
    """Toggle one emoji; answers JSON to the page's script, else goes back to the tree."""
    message = _message_or_404(request, message_id)
    emoji = request.POST.get("emoji", "")
    on = request.POST.get("on", "1") == "1"
    try:
        counts = trees.react(message=message, user=cast(User, request.user), emoji=emoji, on=on)
    except ChorusError as error:
        if request.headers.get("Accept") == "application/json":
            return JsonResponse(
                {"error": {"code": error.code, "message": error.message}}, status=400
            )
        messages.warning(request, error_text(error))
        counts = message.emojis
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"emojis": counts, "on": on})
    default = reverse("tree", args=[message.tree_id])
    return redirect(f"{safe_next(request, default)}#m-{message.id}")


def _reportable(request: HttpRequest, message_id: UUID) -> Message:
    """A message the user may see, or one shown to them by the task named in ?task=."""
    try:
        task_id = UUID(request.GET["task"]) if request.GET.get("task") else None
        return access_reportable_message(
            user=cast(User, request.user), message_id=message_id, task_id=task_id
        )
    except (ValueError, NotFound):
        raise Http404 from None


@volunteer_page(tutorial=False)
def report(request: HttpRequest, message_id: UUID) -> HttpResponse:
    message = _reportable(request, message_id)
    form = ReportForm(request.POST or None)
    back = safe_next(request, f"{reverse('tree', args=[message.tree_id])}#m-{message.id}")
    if request.method == "POST" and form.is_valid():
        try:
            report_message(
                message=message,
                reporter=cast(User, request.user),
                reason=form.cleaned_data["reason"],
                text=form.cleaned_data["text"],
            )
        except Conflict:
            messages.info(
                request, _("You reported this message already; a moderator will look at it.")
            )
        except ChorusError as error:
            messages.warning(request, error_text(error))
        else:
            messages.success(request, _("Thank you. A moderator will look at this message."))
        return redirect(back)
    return render(
        request, "frontend/trees/report.html", {"message": message, "form": form, "next": back}
    )
