"""Moderators: the dataset exports, read-only (their list, one export's progress, and a
finished version's folder as a tar)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.core.api_schema import errors
from backend.core.http import AuthenticatedRequest
from backend.exports import selectors
from backend.exports.archive import stream_tar
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


class ExportDownloadView(APIView):
    @extend_schema(
        operation_id="download_export",
        summary="Moderators: a finished version's folder as a tar archive, streamed.",
        responses={
            (200, "application/x-tar"): OpenApiResponse(
                OpenApiTypes.BINARY, description="chorus-dataset-vN/ and its files."
            ),
            **errors(403, 404),
        },
    )
    def get(self, request: AuthenticatedRequest, export_id: UUID) -> StreamingHttpResponse:
        ensure_moderator(request.user)
        export, folder = selectors.downloadable_version(export_id)
        return tar_response(folder, version=export.version)


def tar_response(folder: Path, *, version: int | None) -> StreamingHttpResponse:
    """The folder as an attachment named chorus-dataset-vN.tar, read as it is sent."""
    name = f"chorus-dataset-v{version}"
    response = StreamingHttpResponse(
        stream_tar(folder, prefix=name), content_type="application/x-tar"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}.tar"'
    return response
