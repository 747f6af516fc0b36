"""The leaderboard API."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.community import selectors
from backend.community.points import FORMULA, Period
from backend.core.api_schema import errors
from backend.core.http import AuthenticatedRequest


class Breakdown(serializers.Serializer):
    prompt = serializers.IntegerField()
    reply = serializers.IntegerField()
    review = serializers.IntegerField()
    ranking = serializers.IntegerField()
    accepted = serializers.IntegerField()
    agreement = serializers.IntegerField()
    top_reply = serializers.IntegerField()


class LeaderboardEntry(serializers.Serializer):
    rank = serializers.IntegerField(help_text="Equal points share a rank.")
    user_id = serializers.UUIDField()
    name = serializers.CharField()
    points = serializers.IntegerField()
    tasks = serializers.IntegerField(help_text="Submitted tasks in the period.")
    breakdown = Breakdown(help_text="Points per kind of contribution.")


class LeaderboardMe(serializers.Serializer):
    rank = serializers.IntegerField(
        allow_null=True,
        help_text="Among listed volunteers (where you would be, if hidden); null before your "
        "first points.",
    )
    points = serializers.IntegerField()
    tasks = serializers.IntegerField()
    breakdown = Breakdown()
    is_listed = serializers.BooleanField(help_text="False when you hide yourself.")


class PointsRule(serializers.Serializer):
    action = serializers.CharField()
    kind = serializers.CharField()
    points = serializers.CharField()


class LeaderboardView(APIView):
    class Input(serializers.Serializer):
        period = serializers.ChoiceField(choices=[p.value for p in Period], default="week")
        lang = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
        limit = serializers.IntegerField(
            min_value=1, max_value=selectors.MAX_BOARD_SIZE, default=selectors.BOARD_SIZE
        )

        def validate_lang(self, value: str) -> str:
            if value and value not in settings.CHORUS_LANGUAGES:
                known = ", ".join(settings.CHORUS_LANGUAGES)
                raise serializers.ValidationError(f"Empty for all, or one of: {known}.")
            return value

    class Output(serializers.Serializer):
        period = serializers.ChoiceField(choices=[p.value for p in Period])
        lang = serializers.CharField(help_text="Empty for all languages.")
        start = serializers.DateField(help_text="First day (UTC) of the period.")
        volunteers = serializers.IntegerField(
            help_text="Volunteers with points on this board (listed ones, and you)."
        )
        results = LeaderboardEntry(many=True)
        me = LeaderboardMe()
        formula = PointsRule(many=True, help_text="How points are earned.")

    @extend_schema(
        operation_id="get_leaderboard",
        summary="Points per volunteer in the current day, week, month (UTC) or all time.",
        parameters=[
            OpenApiParameter("period", str, enum=[p.value for p in Period], default="week"),
            OpenApiParameter("lang", str, description="A language code; empty for all."),
            OpenApiParameter("limit", int, default=selectors.BOARD_SIZE),
        ],
        responses={200: Output, **errors(400)},
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        serializer = self.Input(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        which = selectors.board(data["period"], data["lang"])
        mine = selectors.standing(request.user, which)
        result = {
            "period": which.period.value,
            "lang": which.lang,
            "start": which.start,
            "volunteers": mine.volunteers,
            "results": selectors.leaderboard(which, limit=data["limit"]),
            "me": mine,
            "formula": [
                {"action": action, "kind": kind.value, "points": value}
                for action, kind, value in FORMULA
            ],
        }
        return Response(self.Output(result).data)
