"""A volunteer's dashboard, live: the counts of tasks open to them, per language."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from backend.accounts.selectors import working_languages
from backend.core.live import remember_serving_loop, task_group

# Work changes the counts many times a second on a busy platform; each connection reads
# its counts at most this often (one query per language), whatever the rate of events.
MIN_INTERVAL_SECONDS = 1.0


class TaskCountsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        remember_serving_loop()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.langs: list[str] = await self._languages(user)
        self.last_sent = 0.0
        self.pending: asyncio.Task | None = None
        for lang in self.langs:
            await self.channel_layer.group_add(task_group(lang), self.channel_name)
        await self.accept()
        await self._send_counts()

    async def disconnect(self, code: int) -> None:
        for lang in getattr(self, "langs", []):
            await self.channel_layer.group_discard(task_group(lang), self.channel_name)
        if getattr(self, "pending", None):
            self.pending.cancel()  # type: ignore[union-attr]

    async def counts_changed(self, event: dict[str, Any]) -> None:
        if self.pending is not None and not self.pending.done():
            return  # an update is already on its way
        wait = self.last_sent + MIN_INTERVAL_SECONDS - time.monotonic()
        self.pending = asyncio.ensure_future(self._send_later(max(0.0, wait)))

    async def _send_later(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        await self._send_counts()

    async def _send_counts(self) -> None:
        self.last_sent = time.monotonic()
        await self.send_json({"type": "counts", "counts": await self._counts()})

    @database_sync_to_async
    def _languages(self, user: Any) -> list[str]:
        return working_languages(user)

    @database_sync_to_async
    def _counts(self) -> dict[str, dict[str, int]]:
        from backend.accounts.models import User
        from backend.tasks.selectors import availability

        user = User.objects.get(pk=self.scope["user"].pk)
        return {
            lang: {kind: c["available"] for kind, c in availability(user=user, lang=lang).items()}
            for lang in self.langs
        }
