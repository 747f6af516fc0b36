"""The moderators' live feed: new reports and automatic flags, as they happen."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.template.loader import render_to_string

from backend.core.live import MODERATION_GROUP, remember_serving_loop


class ModerationFeedConsumer(AsyncJsonWebsocketConsumer):
    """Moderators only. Each `report.created` event is sent on as the queue item's HTML,
    rendered by the same template as the page, with the number of open reports."""

    async def connect(self) -> None:
        remember_serving_loop()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_moderator:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(MODERATION_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(MODERATION_GROUP, self.channel_name)

    async def report_created(self, event: dict[str, Any]) -> None:
        item = await self._queue_item(event["message_id"], event.get("kind", "report"))
        await self.send_json(item)

    @database_sync_to_async
    def _queue_item(self, message_id: str, kind: str) -> dict[str, Any]:
        from backend.moderation.selectors import open_report_count, report_queue

        item = next(iter(report_queue(message_id=message_id)), None)
        html = (
            render_to_string("frontend/moderation/queue_item.html", {"item": item})
            if item is not None
            else ""
        )
        return {
            "type": kind,
            "message_id": message_id,
            "html": html,
            "open_reports": open_report_count(),
        }
