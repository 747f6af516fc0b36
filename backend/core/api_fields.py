"""Serializer fields the API's request bodies share."""

from __future__ import annotations

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """Text must be sent as a JSON string: 123 is not the text "123" (DRF's CharField would
    turn a number into its digits, so a client's wrong field went unnoticed)."""

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
