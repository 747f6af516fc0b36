"""The volunteer task API: request, read, submit, skip, availability."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.core.api_fields import StrictCharField
from backend.core.api_schema import errors
from backend.core.http import AuthenticatedRequest, api_client
from backend.tasks import selectors, services
from backend.tasks.models import LABEL_TYPES, REPLY_TYPES, SkipReason, TaskType
from backend.trees import labels
from backend.trees.rules import reply_role
from backend.trees.serializers import MessageBrief, message_brief

TYPE_CHOICES = ["random", *TaskType.values]


class LabelSpec(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    question = serializers.CharField()
    # DRF's metaclass moves declared fields off the class, so this does not shadow
    # Field.required at run time; mypy only sees the class attribute.
    required = serializers.BooleanField()  # type: ignore[assignment]


class TaskOutput(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=TaskType.values)
    lang = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    tree_id = serializers.UUIDField(allow_null=True)
    # The message to review, or the parent to reply under / whose replies to rank.
    message_id = serializers.UUIDField(allow_null=True)
    conversation = MessageBrief(many=True, help_text="Root first, ending with message_id.")
    replies = MessageBrief(many=True, help_text="Rank tasks: the replies to order.")
    labels = LabelSpec(many=True, help_text="Review tasks: the labels to give.")
    reply_role = serializers.CharField(allow_null=True, help_text="Write tasks: your role.")
    text_limits = serializers.DictField(child=serializers.IntegerField(), allow_null=True)


def task_data(context: selectors.TaskContext) -> dict:
    """The TaskOutput shape, built directly: this is the hot path of every volunteer's loop,
    and a serializer would deep-copy its fields for each response."""
    from django.conf import settings

    task = context.task
    data: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "lang": task.lang,
        "status": task.status,
        "created_at": task.created_at,
        "expires_at": task.expires_at,
        "tree_id": task.tree_id,
        "message_id": task.slot_id,
        "conversation": [message_brief(m) for m in context.conversation],
        "replies": [message_brief(m) for m in context.replies],
        "labels": [],
        "reply_role": None,
        "text_limits": None,
    }
    if task.type in LABEL_TYPES:
        data["labels"] = [
            {
                "name": name,
                "kind": labels.CATALOGUE[name].kind,
                "question": labels.CATALOGUE[name].question,
                "required": name in labels.MANDATORY,
            }
            for name in labels.OFFERED[task.type]
        ]
    if task.type in REPLY_TYPES or task.type == TaskType.INITIAL_PROMPT:
        parent = context.conversation[-1].role if context.conversation else None
        data["reply_role"] = reply_role(parent) if parent else "prompter"
        data["text_limits"] = {
            "min": settings.CHORUS_MIN_TEXT_LENGTH,
            "max": settings.CHORUS_MAX_TEXT_LENGTH,
        }
    return data


class TaskListView(APIView):
    rate_scopes = {"POST": "task_request"}

    class Input(serializers.Serializer):
        type = serializers.ChoiceField(choices=TYPE_CHOICES, default="random")
        lang = StrictCharField(max_length=16)

    @extend_schema(
        operation_id="request_task",
        summary="Lease a task of a type (or any, with `random`) in a language.",
        request=Input,
        responses={201: TaskOutput, **errors(400, 403, 404)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = _valid(self.Input, request.data)
        task = services.request_task(user=request.user, task_type=data["type"], lang=data["lang"])
        return Response(task_data(selectors.task_context(task)), status=status.HTTP_201_CREATED)


class TaskDetailView(APIView):
    @extend_schema(
        operation_id="get_task",
        summary="One of your tasks with its conversation.",
        responses={200: TaskOutput, **errors(403, 404)},
    )
    def get(self, request: AuthenticatedRequest, task_id: UUID) -> Response:
        task = selectors.access_task(user=request.user, task_id=task_id)
        return Response(task_data(selectors.task_context(task)))


class SubmitView(APIView):
    rate_scopes = {"POST": "task_submit"}

    class Input(serializers.Serializer):
        key = StrictCharField(
            max_length=100,
            required=False,
            help_text="Idempotency key: a retry with the same key returns the first result.",
        )
        text = StrictCharField(
            required=False, allow_blank=True, trim_whitespace=False, max_length=100_000
        )
        labels = serializers.DictField(child=serializers.JSONField(), required=False)
        ranking = serializers.ListField(child=StrictCharField(), required=False)
        not_rankable = serializers.BooleanField(required=False)

    class Output(serializers.Serializer):
        task_id = serializers.UUIDField()
        status = serializers.CharField()
        result_id = serializers.UUIDField(help_text="The message, review or ranking created.")
        replayed = serializers.BooleanField(help_text="True when this repeats a submission.")

    @extend_schema(
        operation_id="submit_task",
        summary="Submit the work of a task: `text`, `labels` or `ranking` by its type.",
        request=Input,
        responses={201: Output, 200: Output, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, task_id: UUID) -> Response:
        data = _valid(self.Input, request.data)
        key = data.pop("key", None)
        done = services.submit_task(
            task_id=task_id, user=request.user, key=key, payload=data, client=api_client(request)
        )
        body = {
            "task_id": done.task.id,
            "status": done.task.status,
            "result_id": done.result_id,
            "replayed": done.replayed,
        }
        code = status.HTTP_200_OK if done.replayed else status.HTTP_201_CREATED
        return Response(self.Output(body).data, status=code)


class SkipView(APIView):
    class Input(serializers.Serializer):
        reason = serializers.ChoiceField(choices=SkipReason.choices)
        note = StrictCharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(
        operation_id="skip_task",
        summary="Give a task back, with a reason; its slot is not offered to you again.",
        request=Input,
        responses={200: TaskOutput, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, task_id: UUID) -> Response:
        data = _valid(self.Input, request.data)
        task = services.skip_task(
            task_id=task_id, user=request.user, reason=data["reason"], note=data.get("note", "")
        )
        return Response(task_data(selectors.TaskContext(task=task)))


class AvailabilityView(APIView):
    class Output(serializers.Serializer):
        lang = serializers.CharField()
        types = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))

    @extend_schema(
        operation_id="task_availability",
        summary="Per task type: open slots, free ones, and those you may take now.",
        parameters=[OpenApiParameter("lang", str, required=True)],
        responses={200: Output, **errors(400)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        lang = services.validate_lang(request.query_params.get("lang", ""))
        counts = selectors.availability(user=request.user, lang=lang)
        return Response({"lang": lang, "types": counts})


def _valid(serializer_class: type[serializers.Serializer], data: object) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
