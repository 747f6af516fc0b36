from __future__ import annotations

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.core.api_schema import errors
from backend.core.http import AuthenticatedRequest
from backend.moderation import services
from backend.moderation.models import ReportReason
from backend.trees.selectors import access_message


class ReportView(APIView):
    class Input(serializers.Serializer):
        reason = serializers.ChoiceField(choices=ReportReason.choices)
        text = serializers.CharField(max_length=2000, required=False, allow_blank=True)

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
        responses={201: Output, **errors(400, 404, 409)},
    )
    def post(self, request: AuthenticatedRequest, message_id: UUID) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = access_message(user=request.user, message_id=message_id)
        report = services.report_message(
            message=message,
            reporter=request.user,
            reason=serializer.validated_data["reason"],
            text=serializer.validated_data.get("text", ""),
        )
        return Response(self.Output(report).data, status=status.HTTP_201_CREATED)
