"""Moderators: the dataset exports, read-only (their list and one export's progress)."""

from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.core.api_schema import errors
from backend.core.http import AuthenticatedRequest
from backend.exports import selectors
from backend.moderation.services import ensure_moderator


class ExportOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    progress = serializers.FloatField(help_text="Share of the messages read, 0 to 1.")
    filters = serializers.DictField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()
    pushed_repo = serializers.CharField()
    pushed_at = serializers.DateTimeField(allow_null=True)


class ExportListView(APIView):
    @extend_schema(
        operation_id="list_exports",
        summary="Moderators: the latest dataset exports, running ones first.",
        responses={200: ExportOutput(many=True), **errors(403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        ensure_moderator(request.user)
        return Response(ExportOutput(selectors.recent_exports(), many=True).data)


class ExportDetailView(APIView):
    @extend_schema(
        operation_id="get_export",
        summary="Moderators: one export, with its status and progress.",
        responses={200: ExportOutput, **errors(403, 404)},
    )
    def get(self, request: AuthenticatedRequest, export_id: UUID) -> Response:
        ensure_moderator(request.user)
        return Response(ExportOutput(selectors.get_export(export_id)).data)
