from __future__ import annotations

from uuid import UUID

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.accounts import selectors, services
from backend.core.api_fields import StrictCharField
from backend.core.api_schema import errors
from backend.core.errors import NotAllowed
from backend.core.http import AuthenticatedRequest, api_client


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


def _ensure_signed_in_session(request: AuthenticatedRequest) -> None:
    """Keys are managed by the person, signed in: a key (leaked, or a trusted client acting
    for someone) can neither make more keys nor see or revoke others."""
    if api_client(request) is not None:
        raise NotAllowed(
            "API keys are managed while signed in (the settings page, or the API with your "
            "login), not with an API key."
        )


class ApiKeyOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField(source="key_prefix", help_text="Shows which key this is.")
    can_act_for_users = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyListView(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=services.MAX_NAME_LENGTH)

    class CreatedOutput(ApiKeyOutput):
        key = serializers.CharField(help_text="The whole key: shown now and never again.")

    @extend_schema(
        operation_id="list_api_keys",
        summary="Your API keys (their prefixes; a key itself is shown only when made).",
        responses={200: ApiKeyOutput(many=True), **errors(403)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        _ensure_signed_in_session(request)
        return Response(ApiKeyOutput(selectors.api_clients_of(request.user), many=True).data)

    @extend_schema(
        operation_id="create_api_key",
        summary="Make an API key. The answer holds the whole key, the only time it is shown.",
        request=Input,
        responses={201: CreatedOutput, **errors(400, 403, 409)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        _ensure_signed_in_session(request)
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        client, key = services.create_api_client(
            owner=request.user, name=serializer.validated_data["name"]
        )
        body = {**ApiKeyOutput(client).data, "key": key}
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # no copy of the key in any cache
        return response


class ApiKeyDetailView(APIView):
    @extend_schema(
        operation_id="revoke_api_key",
        summary="Revoke one of your API keys; requests with it are refused from now on.",
        responses={200: ApiKeyOutput, **errors(403, 404)},
    )
    def delete(self, request: AuthenticatedRequest, key_id: UUID) -> Response:
        _ensure_signed_in_session(request)
        client = selectors.access_api_client(owner=request.user, client_id=key_id)
        return Response(ApiKeyOutput(services.revoke_api_client(client=client)).data)
