"""Chats with the assistant, for their owner only (anyone else gets 404). Replies come
whole here; the chat page streams them over its WebSocket."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts.selectors import working_languages
from backend.assistant import selectors, services
from backend.core.api_fields import StrictCharField
from backend.core.api_schema import errors
from backend.core.errors import NotAllowed
from backend.core.http import AuthenticatedRequest
from backend.core.pagination import Pagination
from backend.moderation.models import ReportReason


class ChatMessageOutput(serializers.Serializer):
    id = serializers.UUIDField()
    role = serializers.CharField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    reply_to_id = serializers.UUIDField(allow_null=True)
    model_name = serializers.CharField()
    finish_reason = serializers.CharField()
    vote = serializers.IntegerField()
    is_reported = serializers.SerializerMethodField()
    proposed_prompt_id = serializers.UUIDField(allow_null=True)

    def get_is_reported(self, message) -> bool:  # type: ignore[no-untyped-def]
        return hasattr(message, "report")


class ChatOutput(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    excluded_from_training = serializers.BooleanField()
    model_name = serializers.CharField()


class ChatDetailOutput(ChatOutput):
    messages = serializers.SerializerMethodField()

    def get_messages(self, chat) -> list[dict]:  # type: ignore[no-untyped-def]
        return ChatMessageOutput(selectors.chat_messages(chat), many=True).data  # type: ignore[return-value]


class ChatListView(APIView):
    # Declared so the schema describes the paged body and its limit and offset.
    pagination_class = Pagination

    class Input(serializers.Serializer):
        title = StrictCharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(
        operation_id="list_chats",
        summary="Your chats with the assistant, latest first.",
        responses={200: ChatOutput(many=True), **errors(400)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.my_chats(request.user), request, view=self)
        return paginator.get_paginated_response(ChatOutput(page, many=True).data)

    @extend_schema(
        operation_id="create_chat",
        summary="Start a chat (the title defaults to your first message).",
        request=Input,
        responses={201: ChatOutput, **errors(400, 403)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        chat = services.create_chat(owner=request.user, title=data.validated_data.get("title", ""))
        return Response(ChatOutput(chat).data, status=status.HTTP_201_CREATED)


class ChatDetailView(APIView):
    class Input(serializers.Serializer):
        title = StrictCharField(max_length=200, required=False, allow_blank=True)
        excluded_from_training = serializers.BooleanField(required=False)

    @extend_schema(
        operation_id="get_chat",
        summary="One of your chats with its messages.",
        responses={200: ChatDetailOutput, **errors(404)},
    )
    def get(self, request: AuthenticatedRequest, chat_id: UUID) -> Response:
        chat = selectors.access_chat(user=request.user, chat_id=chat_id)
        return Response(ChatDetailOutput(chat).data)

    @extend_schema(
        operation_id="update_chat",
        summary="Rename a chat, or exclude it from (or include it in) training data.",
        request=Input,
        responses={200: ChatOutput, **errors(400, 404)},
    )
    def patch(self, request: AuthenticatedRequest, chat_id: UUID) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        chat = selectors.access_chat(user=request.user, chat_id=chat_id)
        chat = services.update_chat(
            chat=chat,
            title=data.validated_data.get("title"),
            excluded_from_training=data.validated_data.get("excluded_from_training"),
        )
        return Response(ChatOutput(chat).data)

    @extend_schema(
        operation_id="delete_chat",
        summary="Delete a chat and its messages (prompts proposed from it stay in review).",
        responses={204: None, **errors(404)},
    )
    def delete(self, request: AuthenticatedRequest, chat_id: UUID) -> Response:
        services.delete_chat(chat=selectors.access_chat(user=request.user, chat_id=chat_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChatMessagesView(APIView):
    rate_scopes = {"POST": "chat_message"}

    class Input(serializers.Serializer):
        text = StrictCharField(trim_whitespace=False)

    class Output(serializers.Serializer):
        message = ChatMessageOutput()
        reply = ChatMessageOutput()

    @extend_schema(
        operation_id="list_chat_messages",
        summary="The chat's messages, oldest first.",
        responses={200: ChatMessageOutput(many=True), **errors(404)},
    )
    def get(self, request: AuthenticatedRequest, chat_id: UUID) -> Response:
        chat = selectors.access_chat(user=request.user, chat_id=chat_id)
        return Response(ChatMessageOutput(selectors.chat_messages(chat), many=True).data)

    @extend_schema(
        operation_id="send_chat_message",
        summary=(
            "Send a message; the assistant's whole reply comes back. When the model is off, "
            "down or slow (503/504) your message is kept (`user_message_id`)."
        ),
        request=Input,
        responses={201: Output, **errors(400, 403, 404, 503, 504)},
    )
    def post(self, request: AuthenticatedRequest, chat_id: UUID) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        chat = selectors.access_chat(user=request.user, chat_id=chat_id)
        message, reply = services.send_message(
            chat=chat, user=request.user, text=data.validated_data["text"]
        )
        body = {"message": message, "reply": reply}
        return Response(self.Output(body).data, status=status.HTTP_201_CREATED)


class ChatVoteView(APIView):
    class Input(serializers.Serializer):
        vote = serializers.ChoiceField(choices=[-1, 0, 1])

    @extend_schema(
        operation_id="vote_chat_reply",
        summary="Vote an assistant reply up (1), down (-1), or take the vote back (0).",
        request=Input,
        responses={200: ChatMessageOutput, **errors(400, 404)},
    )
    def post(self, request: AuthenticatedRequest, chat_id: UUID, message_id: UUID) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        message = selectors.access_chat_message(
            user=request.user, chat_id=chat_id, message_id=message_id
        )
        message = services.vote(
            message=message, user=request.user, value=data.validated_data["vote"]
        )
        return Response(ChatMessageOutput(message).data)


class ChatReportView(APIView):
    rate_scopes = {"POST": "report"}

    class Input(serializers.Serializer):
        reason = serializers.ChoiceField(choices=ReportReason.choices)
        text = StrictCharField(max_length=2000, required=False, allow_blank=True)

    class Output(serializers.Serializer):
        message_id = serializers.UUIDField()
        reason = serializers.CharField()
        text = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="report_chat_reply",
        summary="Report an assistant reply (kept for the moderators and the model's trainers).",
        request=Input,
        responses={201: Output, **errors(400, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, chat_id: UUID, message_id: UUID) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        message = selectors.access_chat_message(
            user=request.user, chat_id=chat_id, message_id=message_id
        )
        report = services.report_reply(
            message=message,
            user=request.user,
            reason=data.validated_data["reason"],
            text=data.validated_data.get("text", ""),
        )
        return Response(self.Output(report).data, status=status.HTTP_201_CREATED)


class ChatProposeView(APIView):
    class Input(serializers.Serializer):
        lang = StrictCharField(max_length=16, required=False)

    class Output(serializers.Serializer):
        prompt_id = serializers.UUIDField(source="id")
        tree_id = serializers.UUIDField()
        text = serializers.CharField()
        lang = serializers.CharField()

    @extend_schema(
        operation_id="propose_chat_turn",
        summary=(
            "Offer the message an up-voted reply answered as a new initial prompt; it goes "
            "into the normal prompt review. `lang` defaults to your first language."
        ),
        request=Input,
        responses={201: Output, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, chat_id: UUID, message_id: UUID) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        reply = selectors.access_chat_message(
            user=request.user, chat_id=chat_id, message_id=message_id
        )
        lang = data.validated_data.get("lang") or working_languages(request.user)[0]
        prompt = services.propose_as_prompt(reply=reply, user=request.user, lang=lang)
        return Response(self.Output(prompt).data, status=status.HTTP_201_CREATED)


# --- Moderators ----------------------------------------------------------------------------


class ChatReportItem(serializers.Serializer):
    id = serializers.UUIDField()
    reason = serializers.CharField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    reporter = serializers.CharField(source="reporter.username")
    reply_id = serializers.UUIDField(source="message.id")
    reply = serializers.CharField(source="message.text")
    model_name = serializers.CharField(source="message.model_name")
    question = serializers.CharField(source="message.reply_to.text", default="")


class ChatReportQueueView(APIView):
    @extend_schema(
        operation_id="list_chat_reports",
        summary="Moderators: open reports of the assistant's chat replies, oldest first.",
        responses={200: ChatReportItem(many=True), **errors(403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        if not request.user.is_moderator:
            raise NotAllowed("Only moderators may do this.")
        return Response(ChatReportItem(selectors.open_chat_reports(), many=True).data)


class ChatReportResolveView(APIView):
    @extend_schema(
        operation_id="resolve_chat_report",
        summary="Moderators: mark a chat reply's report as looked at.",
        request=None,
        responses={200: ChatReportItem, **errors(403, 404)},
    )
    def post(self, request: AuthenticatedRequest, report_id: UUID) -> Response:
        report = services.resolve_chat_report(report_id=report_id, moderator=request.user)
        return Response(ChatReportItem(report).data)
