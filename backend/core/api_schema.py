"""OpenAPI pieces every API module shares: the error body and its responses."""

from __future__ import annotations

from typing import Literal

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorBody = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(child=serializers.ListField()),
            },
        )
    },
)

_MEANING = {
    400: "Bad input: `fields` names what is wrong.",
    401: "Not authenticated.",
    403: "Not allowed (e.g. banned, someone else's task).",
    404: "Not found, or not visible to you; for task requests, no task available (`reasons`).",
    409: (
        "Conflict: the task expired, was done already, or its tree moved on or was halted; "
        "`duplicate_prompt`: a live prompt is nearly the same (`duplicate_of` has its "
        "`message_id` and `tree_id`)."
    ),
    429: "Rate limited: retry after the Retry-After header's seconds.",
    503: "Unavailable for a moment: the database connection was lost "
    "(`database_unavailable`; retry after the Retry-After header's seconds, a submission "
    "with the same idempotency key), or the assistant is switched off (`inference_off`) "
    "or its server is down (`inference_unavailable`).",
    504: "The assistant's server was too slow (`inference_timeout`).",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for extend_schema, always with 401, 429 and 503 (any request may
    lose its database connection)."""
    codes = sorted({401, 429, 503, *statuses})
    return {code: OpenApiResponse(ErrorBody, description=_MEANING[code]) for code in codes}


class ChorusAutoSchema(AutoSchema):
    """Names nested serializers after their view: SubmitView.Input -> SubmitInput."""

    def get_serializer_name(
        self, serializer: serializers.Serializer, direction: Literal["request", "response"]
    ) -> str:
        qualname = type(serializer).__qualname__
        if "." in qualname:
            outer, inner = qualname.rsplit(".", 1)
            return outer.removesuffix("View") + inner
        return super().get_serializer_name(serializer, direction)
