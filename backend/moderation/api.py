from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts.models import User
from backend.accounts.permissions import MODERATORS_ONLY
from backend.core.api_fields import StrictCharField
from backend.core.api_schema import errors
from backend.core.http import AuthenticatedRequest, api_client
from backend.core.pagination import Pagination
from backend.moderation import figures, selectors, services
from backend.moderation.models import VOLUNTEER_REASONS, Action
from backend.tasks.selectors import access_reportable_message
from backend.trees.rules import State


class ReportView(APIView):
    rate_scopes = {"POST": "report"}

    class Input(serializers.Serializer):
        reason = serializers.ChoiceField(choices=[(r.value, r.label) for r in VOLUNTEER_REASONS])
        text = StrictCharField(max_length=2000, required=False, allow_blank=True)
        task_id = serializers.UUIDField(
            required=False,
            help_text="Your task that shows the message, when it is not public yet "
            "(a reply waiting for your review).",
        )

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        message_id = serializers.UUIDField()
        reason = serializers.CharField()
        text = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="report_message",
        summary="Report a message to the moderators.",
        request=Input,
        responses={201: Output, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = access_reportable_message(
            user=request.user,
            message_id=message_id,
            task_id=serializer.validated_data.get("task_id"),
        )
        report = services.report_message(
            message=message,
            reporter=request.user,
            reason=serializer.validated_data["reason"],
            text=serializer.validated_data.get("text", ""),
            client=api_client(request),
        )
        return Response(self.Output(report).data, status=status.HTTP_201_CREATED)


# --- Moderators ----------------------------------------------------------------------------


class ReasonInput(serializers.Serializer):
    reason = StrictCharField(max_length=1000, allow_blank=True)


class ModeratedMessage(serializers.Serializer):
    id = serializers.UUIDField()
    tree_id = serializers.UUIDField()
    parent_id = serializers.UUIDField(allow_null=True)
    role = serializers.CharField()
    lang = serializers.CharField()
    text = serializers.CharField()
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    deleted = serializers.BooleanField()
    review_count = serializers.IntegerField()
    review_result = serializers.BooleanField(allow_null=True)
    labels = serializers.DictField(source="label_summary")
    created_at = serializers.DateTimeField()


class MessageEditView(APIView):
    permission_classes = MODERATORS_ONLY

    class Input(serializers.Serializer):
        text = StrictCharField(trim_whitespace=False, allow_blank=True)
        reason = StrictCharField(max_length=1000, allow_blank=True)

    @extend_schema(
        operation_id="edit_message",
        summary="Moderators: change a message's text (kept as a revision, with the reason).",
        request=Input,
        responses={200: ModeratedMessage, **errors(400, 403, 404)},
    )
    def post(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        data = _valid(self.Input, request)
        message = services.edit_message(
            moderator=request.user,
            client=api_client(request),
            message_id=message_id,
            text=data["text"],
            reason=data["reason"],
        )
        return Response(ModeratedMessage(message).data)


class MessageDeleteView(APIView):
    permission_classes = MODERATORS_ONLY

    @extend_schema(
        operation_id="delete_message",
        summary="Moderators: delete a message and the replies below it.",
        request=ReasonInput,
        responses={200: ModeratedMessage, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        data = _valid(ReasonInput, request)
        message = services.delete_message(
            moderator=request.user,
            client=api_client(request),
            message_id=message_id,
            reason=data["reason"],
        )
        return Response(ModeratedMessage(message).data)


class MessageUndeleteView(APIView):
    permission_classes = MODERATORS_ONLY

    @extend_schema(
        operation_id="undelete_message",
        summary="Moderators: restore a deleted message and the replies below it.",
        request=ReasonInput,
        responses={200: ModeratedMessage, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        data = _valid(ReasonInput, request)
        message = services.undelete_message(
            moderator=request.user,
            client=api_client(request),
            message_id=message_id,
            reason=data["reason"],
        )
        return Response(ModeratedMessage(message).data)


class ResolveReportsView(APIView):
    permission_classes = MODERATORS_ONLY

    class Input(serializers.Serializer):
        note = StrictCharField(max_length=1000, required=False, allow_blank=True)

    class Output(serializers.Serializer):
        resolved = serializers.IntegerField()

    @extend_schema(
        operation_id="resolve_reports",
        summary="Moderators: close a message's open reports.",
        request=Input,
        responses={200: Output, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        data = _valid(self.Input, request)
        count = services.resolve_reports(
            moderator=request.user,
            client=api_client(request),
            message_id=message_id,
            note=data.get("note", ""),
        )
        return Response({"resolved": count})


class TreeSettingsView(APIView):
    permission_classes = MODERATORS_ONLY

    class Input(serializers.Serializer):
        settings = serializers.DictField(help_text="Tree limits to change, e.g. goal_size.")
        reason = StrictCharField(max_length=1000, allow_blank=True)

    class Output(serializers.Serializer):
        id = serializers.UUIDField()
        state = serializers.CharField()
        settings = serializers.DictField()

    @extend_schema(
        operation_id="change_tree_settings",
        summary="Moderators: change one tree's limits.",
        request=Input,
        responses={200: Output, **errors(400, 403, 404)},
    )
    def patch(self, request: AuthenticatedRequest, tree_id: UUID) -> Response:
        data = _valid(self.Input, request)
        tree = services.change_tree_settings(
            moderator=request.user,
            client=api_client(request),
            tree_id=tree_id,
            changes=data["settings"],
            reason=data["reason"],
        )
        settings = {name: getattr(tree, name) for name in services.TREE_SETTINGS}
        return Response({"id": tree.id, "state": tree.state, "settings": settings})


class UserActionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    username = serializers.CharField()
    is_banned = serializers.BooleanField()
    removed = serializers.DictField(child=serializers.IntegerField(), required=False)


def _user_action(name: str, summary: str):  # type: ignore[no-untyped-def]
    """A POST endpoint for one of the services ban_user, unban_user, purge_user."""

    class UserActionView(APIView):
        permission_classes = MODERATORS_ONLY

        @extend_schema(
            operation_id=f"{name}_user",
            summary=summary,
            request=ReasonInput,
            responses={200: UserActionOutput, **errors(400, 403, 404, 409)},
        )
        def post(self, request: AuthenticatedRequest, user_id: UUID) -> Response:
            data = _valid(ReasonInput, request)
            outcome = getattr(services, f"{name}_user")(
                moderator=request.user,
                client=api_client(request),
                user_id=user_id,
                reason=data["reason"],
            )
            user = User.objects.get(pk=user_id)
            body: dict[str, Any] = {
                "id": user.pk,
                "username": user.username,
                "is_banned": user.is_banned,
            }
            if isinstance(outcome, dict):
                body["removed"] = outcome
            return Response(body)

    UserActionView.__name__ = UserActionView.__qualname__ = f"User{name.title()}View"
    return UserActionView


UserBanView = _user_action("ban", "Moderators: ban a user from contributing.")
UserUnbanView = _user_action("unban", "Moderators: lift a user's ban.")
UserPurgeView = _user_action(
    "purge", "Moderators: ban a user and delete everything they contributed."
)


class ReportQueueView(APIView):
    class Output(serializers.Serializer):
        message = ModeratedMessage()
        reports = serializers.ListField(child=serializers.DictField())
        conversation = ModeratedMessage(many=True)

    @extend_schema(
        operation_id="report_queue",
        summary="Moderators: messages with open reports, most reported first.",
        responses={200: Output(many=True), **errors(403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        services.ensure_moderator(request.user)
        items = selectors.report_queue()
        return Response(
            [
                {
                    "message": ModeratedMessage(item.message).data,
                    "reports": [
                        {
                            "reason": r.reason,
                            "text": r.text,
                            # None: filed by auto-moderation, with its findings in details.
                            "reporter": r.reporter.username if r.reporter else None,
                            "details": r.details,
                            "created_at": r.created_at,
                        }
                        for r in item.reports
                    ],
                    "conversation": ModeratedMessage(item.conversation, many=True).data,
                }
                for item in items
            ]
        )


class MessageSearchView(APIView):
    # Declared so the schema describes the paged body and its limit and offset.
    pagination_class = Pagination

    @extend_schema(
        operation_id="search_messages",
        summary="Moderators: full-text search over messages, with filters.",
        parameters=[
            OpenApiParameter("q", str, description="Words to find (web search syntax)."),
            OpenApiParameter("author", str),
            OpenApiParameter("state", str, enum=[s.value for s in State]),
            OpenApiParameter("lang", str),
            OpenApiParameter("label", str),
            OpenApiParameter("label_min", float),
            OpenApiParameter("since", str),
            OpenApiParameter("until", str),
            OpenApiParameter("deleted", str, enum=["true", "false"]),
        ],
        responses={200: ModeratedMessage(many=True), **errors(400, 403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        services.ensure_moderator(request.user)
        messages = selectors.search_messages(selectors.parse_filters(request.query_params))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(messages, request, view=self)
        return paginator.get_paginated_response(ModeratedMessage(page, many=True).data)


class AuditLogView(APIView):
    # Declared so the schema describes the paged body and its limit and offset.
    pagination_class = Pagination

    class Output(serializers.Serializer):
        id = serializers.IntegerField()
        created_at = serializers.DateTimeField()
        actor_id = serializers.UUIDField(allow_null=True)
        actor_name = serializers.CharField()
        api_client_id = serializers.UUIDField(allow_null=True)
        api_client_name = serializers.CharField()
        action = serializers.CharField()
        target_type = serializers.CharField()
        target_id = serializers.CharField()
        reason = serializers.CharField()
        details = serializers.DictField()

    @extend_schema(
        operation_id="audit_log",
        summary="Moderators: every moderator, admin and automatic action, newest first.",
        parameters=[
            OpenApiParameter("action", str, enum=Action.values),
            OpenApiParameter("actor", str),
            OpenApiParameter("target_id", str),
        ],
        responses={200: Output(many=True), **errors(400, 403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        services.ensure_moderator(request.user)
        entries = selectors.audit_log(
            action=request.query_params.get("action", ""),
            actor=request.query_params.get("actor", ""),
            target_id=request.query_params.get("target_id", ""),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(self.Output(page, many=True).data)


def _valid(serializer_class: type[serializers.Serializer], request: AuthenticatedRequest) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- Moderators' figures -------------------------------------------------------------------


def _window(request: AuthenticatedRequest, default: str) -> str:
    return str(request.query_params.get("window", default))


WINDOW_PARAMETER = OpenApiParameter(
    "window", str, enum=list(figures.WINDOWS), description="The time window counted."
)


class TrollboardView(APIView):
    class Output(serializers.Serializer):
        user_id = serializers.UUIDField()
        username = serializers.CharField()
        is_banned = serializers.BooleanField()
        score = serializers.IntegerField(help_text="The weighted sum of the signals below.")
        reports = serializers.IntegerField(help_text="Reports against their messages.")
        flags = serializers.IntegerField(
            help_text="Reviews flagging their messages as harmful, and red-flag reactions."
        )
        spam = serializers.IntegerField(help_text="Reviews calling their messages spam.")
        downvotes = serializers.IntegerField(help_text="Thumbs-down reactions to their messages.")
        decided_reviews = serializers.IntegerField()
        disagreeing_reviews = serializers.IntegerField(
            help_text="Their reviews whose verdict differs from the decided result."
        )
        review_disagreement = serializers.FloatField(allow_null=True)
        rankings = serializers.IntegerField()
        rankings_against = serializers.IntegerField(
            help_text="Their rankings with a negative Kendall's tau against the consensus."
        )
        ranking_agreement = serializers.FloatField(allow_null=True)

    @extend_schema(
        operation_id="trollboard",
        summary="Moderators: users ranked by the signals against them in a time window.",
        parameters=[WINDOW_PARAMETER],
        responses={200: Output(many=True), **errors(400, 403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        services.ensure_moderator(request.user)
        rows = figures.trollboard(window=_window(request, "week"))
        return Response(self.Output(rows, many=True).data)


class VolunteerAgreementOutput(serializers.Serializer):
    user_id = serializers.UUIDField()
    username = serializers.CharField()
    rankings = serializers.IntegerField()
    ranking_agreement = serializers.FloatField(allow_null=True)
    decided_reviews = serializers.IntegerField()
    disagreeing_reviews = serializers.IntegerField()
    review_disagreement = serializers.FloatField(allow_null=True)


class SiblingSetOutput(serializers.Serializer):
    parent_id = serializers.UUIDField(source="id")
    tree_id = serializers.UUIDField(source="tree.id")
    lang = serializers.CharField()
    kendalls_w = serializers.FloatField(source="replies_agreement")
    rankings = serializers.IntegerField(source="ranking_count")


class AcceptanceOutput(serializers.Serializer):
    lang = serializers.CharField()
    role = serializers.CharField()
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    pending = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class SkipsOutput(serializers.Serializer):
    type = serializers.CharField()
    handed_out = serializers.IntegerField()
    skipped = serializers.IntegerField()
    rate = serializers.FloatField()
    reasons = serializers.DictField(child=serializers.IntegerField())


class QualityView(APIView):
    class Output(serializers.Serializer):
        agreement_histogram = serializers.ListField(
            child=serializers.IntegerField(),
            help_text="Scored sibling sets per tenth of Kendall's W, from [0, 0.1) up.",
        )
        worst_sibling_sets = SiblingSetOutput(many=True)
        least_agreeing_rankers = VolunteerAgreementOutput(many=True)
        most_disagreeing_reviewers = VolunteerAgreementOutput(many=True)
        acceptance = AcceptanceOutput(many=True)
        skips = SkipsOutput(many=True)

    @extend_schema(
        operation_id="quality_figures",
        summary="Moderators: agreement, acceptance and skip rates, and who disagrees most.",
        parameters=[WINDOW_PARAMETER],
        responses={200: Output, **errors(400, 403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        services.ensure_moderator(request.user)
        window = _window(request, "all")
        people = figures.volunteer_agreement(window=window)
        return Response(
            {
                "agreement_histogram": figures.agreement_histogram(),
                "worst_sibling_sets": SiblingSetOutput(
                    figures.worst_sibling_sets(), many=True
                ).data,
                "least_agreeing_rankers": VolunteerAgreementOutput(
                    people["rankings"], many=True
                ).data,
                "most_disagreeing_reviewers": VolunteerAgreementOutput(
                    people["reviews"], many=True
                ).data,
                "acceptance": AcceptanceOutput(figures.acceptance_rates(), many=True).data,
                "skips": SkipsOutput(figures.skip_rates(window=window), many=True).data,
            }
        )


class StatisticsView(APIView):
    class Output(serializers.Serializer):
        trees = serializers.ListField(
            child=serializers.DictField(), help_text="{state, lang, trees}"
        )
        backlog = serializers.ListField(
            child=serializers.DictField(),
            help_text="{lang, in_review, in_lottery, growing, waiting_for_ranking}",
        )
        contributions_per_day = serializers.ListField(
            child=serializers.ListField(), help_text="[day, submitted tasks], oldest first."
        )
        contributions_per_type = serializers.DictField(child=serializers.IntegerField())
        active_volunteers = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(
        operation_id="statistics",
        summary="Moderators: trees, backlog, contributions and active volunteers.",
        parameters=[OpenApiParameter("days", int, enum=[30, 90])],
        responses={200: Output, **errors(400, 403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        services.ensure_moderator(request.user)
        days = figures.parse_days(request.query_params.get("days", "30"))
        trees = figures.trees_by_state_and_language()
        done = figures.contributions(days=days)
        return Response(
            {
                "trees": trees,
                "backlog": figures.backlog(trees),
                "contributions_per_day": [[day.isoformat(), n] for day, n in done["per_day"]],
                "contributions_per_type": dict(done["per_type"]),
                "active_volunteers": figures.active_volunteers(),
            }
        )
