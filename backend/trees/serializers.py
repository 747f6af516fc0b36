"""Output shapes of messages and trees, shared by the trees and tasks APIs."""

from __future__ import annotations

from rest_framework import serializers


class MessageBrief(serializers.Serializer):
    id = serializers.UUIDField()
    parent_id = serializers.UUIDField(allow_null=True)
    role = serializers.CharField()
    text = serializers.CharField()
    lang = serializers.CharField()
    depth = serializers.IntegerField()
    synthetic = serializers.BooleanField()
    model_name = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


def message_brief(message) -> dict:  # type: ignore[no-untyped-def]
    """MessageBrief's shape as a plain dict, for hot paths (the renderer formats ids and times
    the way the serializer would)."""
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "role": message.role,
        "text": message.text,
        "lang": message.lang,
        "depth": message.depth,
        "synthetic": message.synthetic,
        "model_name": message.model_name,
        "created_at": message.created_at,
    }


class MessageDetail(MessageBrief):
    tree_id = serializers.UUIDField()
    review_count = serializers.IntegerField()
    review_result = serializers.BooleanField(allow_null=True)
    labels = serializers.DictField(source="label_summary")
    emojis = serializers.DictField(child=serializers.IntegerField())
    rank = serializers.IntegerField(allow_null=True)
    consensus_strength = serializers.FloatField(allow_null=True)
    children_count = serializers.IntegerField()
    deleted = serializers.BooleanField()


class TreeSummary(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField()
    lang = serializers.CharField()
    origin = serializers.CharField()
    created_at = serializers.DateTimeField()
    state_changed_at = serializers.DateTimeField()


class TreeDetail(TreeSummary):
    limits = serializers.DictField(child=serializers.FloatField())
    messages = MessageDetail(many=True)


LIMIT_FIELDS = (
    "reviews_needed",
    "acceptance_threshold",
    "max_depth",
    "max_children_prompter",
    "max_children_assistant",
    "goal_size",
    "rankings_needed",
)


def tree_detail_data(tree, messages) -> dict:  # type: ignore[no-untyped-def]
    return {
        **TreeSummary(tree).data,
        "limits": {name: getattr(tree, name) for name in LIMIT_FIELDS},
        "messages": MessageDetail(messages, many=True).data,
    }
