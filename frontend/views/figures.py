"""Moderators' figures (trollboard, quality, statistics) and the dataset exports page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from backend.core.errors import ChorusError, InvalidInput
from backend.exports import publishing, selectors, services
from backend.exports.archive import stream_tar
from backend.exports.models import ExportStatus
from backend.exports.options import BRANCH_POLICIES, REVIEW_CHOICES, ExportOptions
from backend.moderation import figures
from backend.trees.rules import State
from frontend import charts, text
from frontend.access import error_text
from frontend.views.moderation import acting_moderator, moderator_page, render_moderation


def _window(request: HttpRequest, default: str) -> str:
    window = request.GET.get("window", default)
    return window if window in figures.WINDOWS else default


def _windows() -> list[tuple[str, str]]:
    return [("day", _("Day")), ("week", _("Week")), ("month", _("Month")), ("all", _("All time"))]


@moderator_page
def trollboard(request: HttpRequest) -> HttpResponse:
    window = _window(request, "week")
    return render_moderation(
        request,
        "frontend/moderation/trollboard.html",
        {
            "rows": figures.trollboard(window=window),
            "window": window,
            "windows": _windows(),
            "weights": figures.WEIGHTS,
        },
    )


@moderator_page
def quality(request: HttpRequest) -> HttpResponse:
    window = _window(request, "all")
    histogram = figures.agreement_histogram()
    buckets = figures.AGREEMENT_BUCKETS
    agreement_chart = charts.bar_chart(
        title=_("Agreement per sibling set"),
        description=_(
            "How many ranked sibling sets have a Kendall's W in each tenth from 0 (no "
            "agreement) to 1 (every ranking the same); each bar is labelled with the "
            "lowest value it counts."
        ),
        rows=[(f"{i / buckets:.1f}", count) for i, count in enumerate(histogram)],
    )
    skips = figures.skip_rates(window=window)
    reason_labels = {code: str(label) for code, label in text.SKIP_REASONS.items()}
    for row in skips:
        row["label"] = str(text.TASK_TITLES.get(row["type"], row["type"]))
        row["reason_list"] = [
            (reason_labels[code], count) for code, count in row["reasons"].items() if count
        ]
    return render_moderation(
        request,
        "frontend/moderation/quality.html",
        {
            "window": window,
            "windows": _windows(),
            "agreement_chart": agreement_chart,
            "overall": figures.ranking_agreement_overall(),
            "worst_sets": figures.worst_sibling_sets(),
            "people": figures.volunteer_agreement(window=window),
            "acceptance": figures.acceptance_rates(),
            "skips": skips,
        },
    )


@moderator_page
def statistics(request: HttpRequest) -> HttpResponse:
    try:
        days = figures.parse_days(request.GET.get("days", "30"))
    except InvalidInput:
        days = figures.CONTRIBUTION_DAYS[0]
    trees = figures.trees_by_state_and_language()
    done = figures.contributions(days=days)
    per_state: dict[str, int] = {}
    for row in trees:
        per_state[row["state"]] = per_state.get(row["state"], 0) + row["trees"]
    langs = sorted({row["lang"] for row in trees})
    table = {(row["state"], row["lang"]): row["trees"] for row in trees}
    states_chart = charts.horizontal_bar_chart(
        title=_("Trees by state"),
        description=_("The number of conversation trees in each state, all languages."),
        rows=[
            (str(text.TREE_STATES.get(s.value, s.value)), per_state.get(s.value, 0)) for s in State
        ],
    )
    per_day_chart = charts.line_chart(
        title=_("Contributions per day"),
        description=_("Tasks submitted per day over the last %(days)s days.") % {"days": days},
        rows=[(day.strftime("%m-%d"), n) for day, n in done["per_day"]],
    )
    per_type_chart = charts.horizontal_bar_chart(
        title=_("Contributions per task type"),
        description=_("Tasks submitted per type over the last %(days)s days.") % {"days": days},
        rows=[(str(text.TASK_TITLES.get(kind, kind)), n) for kind, n in done["per_type"]],
    )
    return render_moderation(
        request,
        "frontend/moderation/statistics.html",
        {
            "days": days,
            "spans": figures.CONTRIBUTION_DAYS,
            "states_chart": states_chart,
            "per_day_chart": per_day_chart,
            "per_type_chart": per_type_chart,
            "langs": langs,
            "state_rows": [
                (s.value, [table.get((s.value, lang), 0) for lang in langs]) for s in State
            ],
            "backlog": figures.backlog(trees),
            "active": figures.active_volunteers(),
        },
    )


# --- Exports -------------------------------------------------------------------------------


def export_filters(data: QueryDict) -> dict[str, Any]:
    """The export form's fields as the JSON that ExportOptions.from_json checks; a blank
    field leaves the option at its default."""
    filters: dict[str, Any] = {
        "states": data.getlist("states") or None,
        "langs": [lang.strip() for lang in data.get("langs", "").split(",") if lang.strip()],
        "review": data.get("review") or None,
        "include_deleted": data.get("include_deleted") == "on",
        "include_synthetic": data.get("include_synthetic") == "on",
        "branch_policy": data.get("branch_policy") or None,
        "since": data.get("since") or None,
        "until": data.get("until") or None,
    }
    for name in ("min_agreement", "validation", "test"):
        raw = data.get(name, "").strip()
        if raw:
            try:
                filters[name] = float(raw)
            except ValueError:
                filters[name] = raw  # ExportOptions names the field in its refusal
    return {name: value for name, value in filters.items() if value is not None}


@moderator_page
def exports(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    form = request.POST if request.method == "POST" else None
    if form is not None:
        try:
            services.start_export(user=acting_moderator(request), filters=export_filters(form))
        except InvalidInput as error:
            errors = error.fields
            messages.error(request, _("The export options are not valid; see the fields below."))
        else:
            messages.success(request, _("The export was started."))
            return redirect("moderation_exports")
    listed = selectors.recent_exports()
    defaults = ExportOptions()
    return render_moderation(
        request,
        "frontend/moderation/exports.html",
        {
            "exports": listed,
            "is_running": any(
                e.status in (ExportStatus.PENDING, ExportStatus.RUNNING) for e in listed
            ),
            "errors": errors,
            "form": form,
            "defaults": defaults,
            "states": [s.value for s in State],
            "checked_states": form.getlist("states") if form is not None else defaults.states,
            "reviews": REVIEW_CHOICES,
            "branch_policies": BRANCH_POLICIES,
            "hub_repo": publishing.default_repo(),
        },
        status=400 if errors else 200,
    )


@moderator_page
def export_download(request: HttpRequest, export_id: UUID) -> HttpResponseBase:
    try:
        export, folder = selectors.downloadable_version(export_id)
    except ChorusError as error:
        raise Http404 from error
    name = f"chorus-dataset-v{export.version}"
    response = StreamingHttpResponse(
        stream_tar(folder, prefix=name), content_type="application/x-tar"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}.tar"'
    return response


@moderator_page
def export_push(request: HttpRequest, export_id: UUID) -> HttpResponse:
    """Push a finished version to the Hub now: the moderator waits and sees how it went
    (a failed push, e.g. offline, changes nothing and says why)."""
    if request.method != "POST":
        return redirect("moderation_exports")
    try:
        export = selectors.get_export(export_id)
        pushed = publishing.push_export(
            export=export,
            repo_id=publishing.default_repo(),
            token=publishing.default_token(),
            private=True,
        )
    except ChorusError as error:
        # The service's sentence says what went wrong and that the local copy is intact.
        messages.error(request, _("The push failed: %(reason)s") % {"reason": error_text(error)})
    else:
        messages.success(
            request,
            _("Version %(version)s was pushed to %(repo)s.")
            % {"version": pushed.version, "repo": pushed.pushed_repo},
        )
    return redirect(reverse("moderation_exports"))
