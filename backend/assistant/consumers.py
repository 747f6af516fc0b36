"""The chat's WebSocket, /ws/chat/<chat id>/: the assistant's reply, token by token.

Protocol (JSON both ways):
  browser -> {"type": "send", "text": "..."}      save the message and ask the model
  browser -> {"type": "cancel"}                   stop the reply being written
  server  -> {"type": "message", "message": {...}, "chat_title"}  the user's message, saved
  server  -> {"type": "delta", "text": "..."}     the next piece of the reply (many)
  server  -> {"type": "done", "message": {...}}   the whole reply, saved
  server  -> {"type": "cancelled", "message": {...} | null}  stopped; what came is kept
  server  -> {"type": "error", "code", "message"} the model is off, down or slow, or the
                                                  input is bad; the user's message stays
Only the chat's owner may connect (others are closed with 4403). A closed connection
stops the reply; what came so far is saved.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.template.loader import render_to_string

from backend.assistant import inference, selectors, services
from backend.assistant.models import Chat, ChatMessage, FinishReason
from backend.core import ratelimit
from backend.core.errors import ChorusError, NotFound
from backend.core.live import remember_serving_loop

log = logging.getLogger(__name__)


def message_data(message: ChatMessage, chat: Chat) -> dict[str, Any]:
    """A saved message as the page shows it: the chat page's own HTML for it (the page fills
    in its CSRF token), and the plain fields for other clients."""
    return {
        "id": str(message.id),
        "role": message.role,
        "text": message.text,
        "html": render_to_string(
            "frontend/chat/message.html", {"message": message, "chat": chat, "csrf_token": ""}
        ),
        "model_name": message.model_name,
        "finish_reason": message.finish_reason,
    }


class ChatConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        remember_serving_loop()
        self.generation: asyncio.Task | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        try:
            self.chat: Chat = await database_sync_to_async(selectors.access_chat)(
                user=user, chat_id=UUID(str(self.scope["url_route"]["kwargs"]["chat_id"]))
            )
        except (NotFound, ValueError):
            await self.close(code=4403)
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # The browser went away: stop the model (closing the stream frees its batch row)
        # and keep what it wrote.
        if self.generation is not None and not self.generation.done():
            self.generation.cancel()
            await asyncio.gather(self.generation, return_exceptions=True)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            content = await self.decode_json(text_data or "")
        except ValueError:
            await self._error("invalid_input", "Send JSON messages.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "cancel":
            if self.generation is not None and not self.generation.done():
                self.generation.cancel()
            return
        if kind != "send":
            await self._error("invalid_input", "Unknown message type.")
            return
        if self.generation is not None and not self.generation.done():
            await self._error("busy", "Wait for the reply, or stop it, before you send more.")
            return
        wait = await database_sync_to_async(self._consume_rate)()
        if wait:
            message = f"Too many messages; retry in {wait} s."
            await self._error("rate_limited", message, retry_after=wait)
            return
        try:
            message = await database_sync_to_async(services.accept_question)(
                chat=self.chat, user=self.scope["user"], text=content.get("text")
            )
        except ChorusError as error:
            await self._error(error.code, error.message, fields=error.fields)
            return
        data = await database_sync_to_async(message_data)(message, self.chat)
        # The first message names the chat.
        await self.send_json({"type": "message", "message": data, "chat_title": self.chat.title})
        self.generation = asyncio.ensure_future(self._reply(message))

    def _consume_rate(self) -> int:
        """The chat_message rate limit, as for the API's and the page's messages."""
        headers = dict(self.scope.get("headers", []))
        client = self.scope.get("client") or ("", 0)
        ip = ratelimit.client_ip_from(
            client[0] or "", headers.get(b"x-forwarded-for", b"").decode("latin-1")
        )
        return ratelimit.consume("chat_message", user_id=self.scope["user"].pk, ip=ip)

    async def _reply(self, question: ChatMessage) -> None:
        """Relay the model's pieces as they come, then save the reply."""
        parts: list[str] = []
        model, finish = "", FinishReason.STOP.value
        try:
            turns = await database_sync_to_async(selectors.chat_turns)(self.chat)
            async for served, piece in inference.stream_reply(turns):
                model = served
                if piece.text:
                    parts.append(piece.text)
                    await self.send_json({"type": "delta", "text": piece.text})
                if piece.finish_reason is not None:
                    finish = piece.finish_reason
        except asyncio.CancelledError:
            reply = await self._save(question, parts, model, FinishReason.CANCELLED)
            await self._send_quietly({"type": "cancelled", "message": reply})
            return
        except ChorusError as error:
            extra = {"user_message_id": str(question.id)}
            await self._error(error.code, error.message, **extra)
            return
        reply = await self._save(question, parts, model, finish)
        await self.send_json({"type": "done", "message": reply})

    async def _save(
        self, question: ChatMessage, parts: list[str], model: str, finish: str
    ) -> dict[str, Any] | None:
        if not parts and finish == FinishReason.CANCELLED:
            return None  # nothing came: no empty reply in the chat
        reply = await database_sync_to_async(services.save_reply)(
            chat=self.chat,
            reply_to=question,
            text="".join(parts),
            model_name=model,
            finish_reason=finish,
        )
        return await database_sync_to_async(message_data)(reply, self.chat)

    async def _send_quietly(self, content: dict[str, Any]) -> None:
        try:
            await self.send_json(content)
        except Exception:  # the socket is gone (a disconnect cancelled the reply)
            log.debug("chat %s: %s not delivered", self.chat.pk, content["type"])

    async def _error(self, code: str, message: str, **extra: Any) -> None:
        await self._send_quietly({"type": "error", "code": code, "message": message, **extra})
