"""Task pages: take a task, do it (write, label or rank), skip it."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID, uuid4

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from backend.accounts.models import User
from backend.accounts.selectors import working_languages
from backend.core.errors import ChorusError, DuplicatePrompt, InvalidInput, NotFound, NotYourTask
from backend.tasks import selectors, services
from backend.tasks.models import LABEL_TYPES, RANK_TYPES, TaskStatus, TaskType
from backend.trees.rules import reply_role
from backend.trees.selectors import access_message
from frontend import text
from frontend.access import error_text, volunteer_page
from frontend.forms import LabelForm, SkipForm, WriteForm
from frontend.markdown import render_markdown


@require_POST
@volunteer_page()
def start_task(request: HttpRequest) -> HttpResponse:
    """Lease a task of the asked type and language and open its page."""
    user = cast(User, request.user)
    task_type = request.POST.get("type", "random")
    lang = request.POST.get("lang") or working_languages(user)[0]
    try:
        task = services.request_task(user=user, task_type=task_type, lang=lang)
    except ChorusError as error:
        messages.warning(request, error_text(error))
        return redirect("dashboard")
    return redirect("task", task_id=task.id)


def _own_task(request: HttpRequest, task_id: UUID) -> selectors.TaskContext:
    """The task with its conversation; 404 for someone else's (never say whose it is)."""
    try:
        task = selectors.access_task(user=cast(User, request.user), task_id=task_id)
    except (NotFound, NotYourTask):
        raise Http404 from None
    return selectors.task_context(task)


@volunteer_page()
def task_page(request: HttpRequest, task_id: UUID) -> HttpResponse:
    context = _own_task(request, task_id)
    return _task(request, context, request.POST if request.method == "POST" else None)


def _task(
    request: HttpRequest,
    context: selectors.TaskContext,
    data: QueryDict | None,
    skip_form: SkipForm | None = None,
) -> HttpResponse:
    """The task's page, handling its form's `data` if sent; a `skip_form` given is a refused
    skip, shown in its open panel (the draft of a written reply is kept by the browser)."""
    task = context.task
    if task.status != TaskStatus.LEASED:
        messages.info(request, _("This task is closed; take a new one."))
        return redirect("dashboard")
    skip_form = skip_form or SkipForm()
    if task.type in LABEL_TYPES:
        return _label(request, context, data, skip_form)
    if task.type in RANK_TYPES:
        return _rank(request, context, data, skip_form)
    return _write(request, context, data, skip_form)


def _page(
    request: HttpRequest,
    context: selectors.TaskContext,
    extra: dict[str, Any],
    skip_form: SkipForm,
    status: int = 200,
) -> HttpResponse:
    task = context.task
    data = {
        "task": task,
        "conversation": context.conversation,
        "target_id": task.slot_id,
        "instructions": text.TASK_INSTRUCTIONS[task.type],
        "guideline": text.GUIDELINE_ANCHORS[task.type],
        "skip_form": skip_form,
        # A fresh key per rendering: a double click replays the first submission.
        "submission_key": request.POST.get("key") or uuid4().hex,
        **extra,
    }
    status = 400 if skip_form.errors else status
    return render(request, f"frontend/tasks/{extra['kind']}.html", data, status=status)


def _submit(
    request: HttpRequest, context: selectors.TaskContext, payload: dict[str, Any]
) -> HttpResponse | InvalidInput | DuplicatePrompt:
    """Submit, then back to the dashboard; bad input and a duplicate prompt are handed back
    to the form (the task stays open)."""
    key = (request.POST.get("key") or "")[:100] or None
    try:
        services.submit_task(
            task_id=context.task.id, user=cast(User, request.user), key=key, payload=payload
        )
    except (InvalidInput, DuplicatePrompt) as error:
        return error
    except ChorusError as error:
        messages.warning(request, error_text(error))
        return redirect("dashboard")
    messages.success(request, _("Thank you! Your work was saved."))
    return redirect(f"{reverse('dashboard')}?done={context.task.id}")


def _write(
    request: HttpRequest, context: selectors.TaskContext, data: QueryDict | None, skip: SkipForm
) -> HttpResponse:
    """Write a prompt or reply: edit, review the rendered text, submit."""
    task = context.task
    form = WriteForm(data or None)
    step = "edit"
    duplicate: dict[str, str] | None = None
    if data is not None and form.is_valid():
        action = data.get("action")
        if action == "submit":
            outcome = _submit(request, context, {"text": form.cleaned_data["text"]})
            if isinstance(outcome, HttpResponse):
                return outcome
            if isinstance(outcome, DuplicatePrompt):
                duplicate = _duplicate_link(request, outcome)
                form.add_error("text", _("A prompt like this one exists already."))
            else:
                for message in outcome.fields.get("text", [outcome.message]):
                    form.add_error("text", message)
        elif action == "review":
            step = "review"
    role = (
        "prompter"
        if task.type == TaskType.INITIAL_PROMPT
        else reply_role(context.conversation[-1].role)
    )
    return _page(
        request,
        context,
        {
            "kind": "write",
            "write_label": text.WRITE_LABELS[task.type],
            "form": form,
            "step": step,
            "role": role,
            "preview": render_markdown(form.cleaned_data["text"]) if step == "review" else "",
            "max_length": settings.CHORUS_MAX_TEXT_LENGTH,
            "duplicate": duplicate,
        },
        skip,
        status=(409 if duplicate else 400) if form.errors else 200,
    )


def _duplicate_link(request: HttpRequest, error: DuplicatePrompt) -> dict[str, str]:
    """Where the existing prompt can be read, if this volunteer may see it (a prompt still
    in review is shown to its author and moderators only)."""
    found = error.extra["duplicate_of"]
    try:
        access_message(user=cast(User, request.user), message_id=UUID(found["message_id"]))
    except NotFound:
        return {"url": ""}
    url = reverse("tree", kwargs={"tree_id": found["tree_id"]})
    return {"url": f"{url}#m-{found['message_id']}"}


def _label(
    request: HttpRequest, context: selectors.TaskContext, data: QueryDict | None, skip: SkipForm
) -> HttpResponse:
    task = context.task
    form = LabelForm(task.type, data or None)
    if data is not None and form.is_valid():
        outcome = _submit(request, context, {"labels": form.label_values()})
        if isinstance(outcome, HttpResponse):
            return outcome
        for field, errors in outcome.fields.items():
            name = field.removeprefix("labels.")
            for message in errors:
                form.add_error(name if name in form.fields else None, message)
    return _page(
        request,
        context,
        {"kind": "label", "form": form},
        skip,
        status=400 if form.errors else 200,
    )


def _rank(
    request: HttpRequest, context: selectors.TaskContext, data: QueryDict | None, skip: SkipForm
) -> HttpResponse:
    """Order the offered replies. Each reply's position comes as `position-<id>` (the page
    without JavaScript has a number per reply; with it, a sortable list fills them in)."""
    task = context.task
    replies = {reply.id: reply for reply in context.replies}
    offered = [replies[reply_id] for reply_id in task.offered_ids if reply_id in replies]
    error = ""
    if data is not None:
        if data.get("not_rankable"):
            payload: dict[str, Any] = {"ranking": [], "not_rankable": True}
        else:
            payload = {"ranking": _order_from_positions(data, task.offered_ids)}
        if payload["ranking"] is None:
            error = _("Give every reply a different place, from 1 to {n}.").format(n=len(offered))
        else:
            outcome = _submit(request, context, payload)
            if isinstance(outcome, HttpResponse):
                return outcome
            error = outcome.message
    return _page(
        request,
        context,
        {
            "kind": "rank",
            "replies": offered,
            "positions": range(1, len(offered) + 1),
            "reveal_synthetic": settings.CHORUS_REVEAL_SYNTHETIC,
            "error": error,
        },
        skip,
        status=400 if error else 200,
    )


def _order_from_positions(data: QueryDict, offered: list[UUID]) -> list[str] | None:
    places: dict[int, str] = {}
    for reply_id in offered:
        raw = data.get(f"position-{reply_id}", "")
        if not raw.isdigit() or not 1 <= int(raw) <= len(offered) or int(raw) in places:
            return None
        places[int(raw)] = str(reply_id)
    return [places[place] for place in sorted(places)]


@require_POST
@volunteer_page()
def skip_task(request: HttpRequest, task_id: UUID) -> HttpResponse:
    context = _own_task(request, task_id)
    form = SkipForm(request.POST)
    if not form.is_valid():
        return _task(request, context, None, form)
    try:
        services.skip_task(
            task_id=context.task.id,
            user=cast(User, request.user),
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
        )
    except ChorusError as error:
        messages.warning(request, error_text(error))
    else:
        messages.info(request, _("Skipped. You will not be offered this one again."))
    return redirect("dashboard")


@require_POST
@volunteer_page(tutorial=False)
def preview(request: HttpRequest) -> HttpResponse:
    """Markdown rendered and sanitised by the server, for the editor's live preview."""
    source = request.POST.get("text", "")
    if len(source) > 2 * settings.CHORUS_MAX_TEXT_LENGTH:
        return HttpResponseBadRequest(_("The text is too long to preview."))
    return HttpResponse(render_markdown(source))
