from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts import selectors, services
from backend.core.api_fields import StrictCharField
from backend.core.api_schema import errors
from backend.core.http import AuthenticatedRequest


class MeView(APIView):
    class Output(serializers.Serializer):
        id = serializers.UUIDField()
        username = serializers.CharField()
        display_name = serializers.CharField()
        languages = serializers.ListField(child=serializers.CharField())
        role = serializers.CharField()
        accepted_terms_version = serializers.IntegerField(allow_null=True)
        is_banned = serializers.BooleanField()
        show_on_leaderboard = serializers.BooleanField()

    class Input(serializers.Serializer):
        display_name = StrictCharField(max_length=100, required=False, allow_blank=True)
        languages = serializers.ListField(
            child=StrictCharField(max_length=16), required=False, max_length=20
        )
        show_on_leaderboard = serializers.BooleanField(required=False)

        def validate_languages(self, value: list[str]) -> list[str]:
            unknown = [lang for lang in value if lang not in settings.CHORUS_LANGUAGES]
            if unknown:
                known = ", ".join(settings.CHORUS_LANGUAGES)
                raise serializers.ValidationError(
                    f"Unknown: {', '.join(unknown)}; one of: {known}."
                )
            return value

    @extend_schema(
        operation_id="get_me", summary="Your profile.", responses={200: Output, **errors()}
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(self.Output(request.user).data)

    @extend_schema(
        operation_id="update_me",
        summary="Change your display name, languages or leaderboard visibility.",
        request=Input,
        responses={200: Output, **errors(400)},
    )
    def patch(self, request: AuthenticatedRequest) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.update_profile(user=request.user, **serializer.validated_data)
        return Response(self.Output(user).data)


class MyStatsView(APIView):
    class Output(serializers.Serializer):
        messages_written = serializers.IntegerField()
        messages_accepted = serializers.IntegerField()
        messages_rejected = serializers.IntegerField()
        messages_pending_review = serializers.IntegerField()
        acceptance_rate = serializers.FloatField(allow_null=True)
        reviews = serializers.IntegerField()
        rankings = serializers.IntegerField()
        tasks_submitted = serializers.IntegerField()
        tasks_skipped = serializers.IntegerField()
        tasks_expired = serializers.IntegerField()

    @extend_schema(
        operation_id="get_my_stats",
        summary="Your contributions.",
        responses={200: Output, **errors()},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        return Response(self.Output(selectors.user_stats(request.user)).data)
