"""Reading trees and messages (as permissions allow), reacting, and halting/resuming trees."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts.permissions import MODERATORS_ONLY
from backend.core import errors as problems
from backend.core.api_fields import StrictCharField
from backend.core.api_schema import errors
from backend.core.errors import InvalidInput
from backend.core.http import AuthenticatedRequest, api_client
from backend.core.pagination import Pagination
from backend.trees import selectors, services
from backend.trees.models import Emoji
from backend.trees.rules import State
from backend.trees.serializers import (
    MessageBrief,
    MessageDetail,
    TreeDetail,
    TreeSummary,
    tree_detail_data,
)


class TreeListView(APIView):
    # Declared so the schema describes the paged body and its limit and offset.
    pagination_class = Pagination

    @extend_schema(
        operation_id="list_trees",
        summary="Trees you may see, newest first.",
        parameters=[
            OpenApiParameter("state", str, enum=[s.value for s in State]),
            OpenApiParameter("lang", str),
        ],
        responses={200: TreeSummary(many=True), **errors(400)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        trees = selectors.visible_trees(request.user)
        state = request.query_params.get("state")
        if state:
            if state not in State.__members__.values():
                raise InvalidInput(
                    f"Unknown state {state!r}.", fields={"state": [problems.one_of(State)]}
                )
            trees = trees.filter(state=state)
        if request.query_params.get("lang"):
            trees = trees.filter(lang=request.query_params["lang"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(trees, request, view=self)
        return paginator.get_paginated_response(TreeSummary(page, many=True).data)


class TreeDetailView(APIView):
    @extend_schema(
        operation_id="get_tree",
        summary="A tree with the messages you may see (flat, with parent ids).",
        responses={200: TreeDetail, **errors(404)},
    )
    def get(self, request: AuthenticatedRequest, tree_id: UUID) -> Response:
        tree, messages = selectors.access_tree(user=request.user, tree_id=tree_id)
        return Response(tree_detail_data(tree, messages))


class HaltInput(serializers.Serializer):
    reason = StrictCharField(max_length=1000, required=False, allow_blank=True)


class TreeHaltView(APIView):
    permission_classes = MODERATORS_ONLY

    @extend_schema(
        operation_id="halt_tree",
        summary="Moderators: freeze a tree (no tasks, no transitions); logged with the reason.",
        request=HaltInput,
        responses={200: TreeSummary, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, tree_id: UUID) -> Response:
        from backend.moderation.services import halt_tree

        data = HaltInput(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data.get("reason", "")
        return Response(
            TreeSummary(
                halt_tree(
                    moderator=request.user,
                    client=api_client(request),
                    tree_id=tree_id,
                    reason=reason,
                )
            ).data
        )


class TreeResumeView(APIView):
    permission_classes = MODERATORS_ONLY

    @extend_schema(
        operation_id="resume_tree",
        summary="Moderators: resume a halted tree where it stopped; logged with the reason.",
        request=HaltInput,
        responses={200: TreeSummary, **errors(400, 403, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, tree_id: UUID) -> Response:
        from backend.moderation.services import resume_tree

        data = HaltInput(data=request.data)
        data.is_valid(raise_exception=True)
        reason = data.validated_data.get("reason", "")
        return Response(
            TreeSummary(
                resume_tree(
                    moderator=request.user,
                    client=api_client(request),
                    tree_id=tree_id,
                    reason=reason,
                )
            ).data
        )


class MessageDetailView(APIView):
    @extend_schema(
        operation_id="get_message",
        summary="One message with its labels, emojis and rank.",
        responses={200: MessageDetail, **errors(404)},
    )
    def get(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        message = selectors.access_message(user=request.user, message_id=message_id)
        return Response(MessageDetail(message).data)


class ConversationView(APIView):
    @extend_schema(
        operation_id="get_conversation",
        summary="The message and its ancestors, root first.",
        responses={200: MessageBrief(many=True), **errors(404)},
    )
    def get(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        message = selectors.access_message(user=request.user, message_id=message_id)
        return Response(MessageBrief(selectors.conversation(message.id), many=True).data)


class ReactionsView(APIView):
    class Input(serializers.Serializer):
        emoji = serializers.ChoiceField(choices=Emoji.choices)

    class Output(serializers.Serializer):
        message_id = serializers.UUIDField()
        emojis = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(
        operation_id="add_reaction",
        summary="React to a message with an emoji (once per emoji).",
        request=Input,
        responses={201: Output, **errors(400, 403, 404)},
    )
    def post(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = selectors.access_message(user=request.user, message_id=message_id)
        counts = services.react(
            message=message,
            user=request.user,
            emoji=serializer.validated_data["emoji"],
            client=api_client(request),
        )
        body = {"message_id": message.id, "emojis": counts}
        return Response(self.Output(body).data, status=status.HTTP_201_CREATED)


class ReactionDeleteView(APIView):
    @extend_schema(
        operation_id="remove_reaction",
        summary="Take your emoji back.",
        responses={200: ReactionsView.Output, **errors(400, 403, 404)},
    )
    def delete(self, request: AuthenticatedRequest, message_id: UUID, emoji: str) -> Response:
        message = selectors.access_message(user=request.user, message_id=message_id)
        counts = services.react(message=message, user=request.user, emoji=emoji, on=False)
        return Response(ReactionsView.Output({"message_id": message.id, "emojis": counts}).data)
