"""The client side of any OpenAI-compatible inference server (`python -m ml serve`, vLLM,
TGI), over HTTP with httpx. Nothing here knows Django's models; failures become the domain
errors InferenceOff, InferenceUnavailable and InferenceTimeout.

- `stream_reply` (async): the reply's text pieces as the server streams them (server-sent
  events, `data: {chunk}` lines up to `data: [DONE]`), for the chat's WebSocket;
- `complete_reply` (sync): the whole reply at once (read as a stream too, so the timeout
  is per piece), for the page without JavaScript, the API and the candidate-reply job.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.cache import cache

from backend.core.errors import InferenceOff, InferenceTimeout, InferenceUnavailable

log = logging.getLogger(__name__)

# The model a server lists is looked up once in a while, not before every reply.
MODEL_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Reply:
    text: str
    model: str
    finish_reason: str  # "stop" or "length"


@dataclass(frozen=True)
class Piece:
    """One streamed delta; the last one carries the finish reason."""

    text: str
    finish_reason: str | None = None


def is_enabled() -> bool:
    return bool(settings.INFERENCE_URL)


def _base_url() -> str:
    if not settings.INFERENCE_URL:
        raise InferenceOff("The assistant is switched off on this site.")
    return str(settings.INFERENCE_URL)


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(settings.INFERENCE_TIMEOUT, connect=settings.INFERENCE_CONNECT_TIMEOUT)


def _headers() -> dict[str, str]:
    key = settings.INFERENCE_API_KEY
    return {"Authorization": f"Bearer {key}"} if key else {}


def _body(model: str, turns: Sequence[Turn], *, stream: bool) -> dict:
    return {
        "model": model,
        "messages": [{"role": t.role, "content": t.content} for t in turns],
        "max_tokens": settings.INFERENCE_MAX_TOKENS,
        "stream": stream,
    }


def _unavailable(error: Exception) -> InferenceUnavailable:
    """The domain error for a failed exchange with the server (logged once, here)."""
    log.warning("inference server %s: %r", settings.INFERENCE_URL, error)
    if isinstance(error, httpx.TimeoutException):
        return InferenceTimeout(
            "The assistant is taking too long to answer. Try again in a moment."
        )
    return InferenceUnavailable("The assistant cannot be reached right now. Try again later.")


def _cache_key() -> str:
    return f"assistant:model:{settings.INFERENCE_URL}"


def _model_from_listing(payload: object) -> str:
    try:
        return str(payload["data"][0]["id"])  # type: ignore[index]
    except (KeyError, IndexError, TypeError) as error:
        raise InferenceUnavailable("The inference server lists no model.") from error


def model_name() -> str:
    """INFERENCE_MODEL, else the first model the server lists (cached for a while)."""
    base = _base_url()
    if settings.INFERENCE_MODEL:
        return str(settings.INFERENCE_MODEL)
    cached = cache.get(_cache_key())
    if cached:
        return str(cached)
    try:
        response = httpx.get(f"{base}/v1/models", headers=_headers(), timeout=_timeout())
        response.raise_for_status()
        name = _model_from_listing(response.json())
    except (httpx.HTTPError, ValueError) as error:
        raise _unavailable(error) from error
    cache.set(_cache_key(), name, MODEL_CACHE_SECONDS)
    return name


async def amodel_name(client: httpx.AsyncClient) -> str:
    base = _base_url()
    if settings.INFERENCE_MODEL:
        return str(settings.INFERENCE_MODEL)
    cached = await cache.aget(_cache_key())
    if cached:
        return str(cached)
    try:
        response = await client.get(f"{base}/v1/models")
        response.raise_for_status()
        name = _model_from_listing(response.json())
    except (httpx.HTTPError, ValueError) as error:
        raise _unavailable(error) from error
    await cache.aset(_cache_key(), name, MODEL_CACHE_SECONDS)
    return name


def complete_reply(turns: Sequence[Turn], *, deadline: float | None = None) -> Reply:
    """The model's whole reply to the conversation `turns` (last turn the user's).

    It is read as a stream, so INFERENCE_TIMEOUT bounds each wait for the next piece, not
    the whole answer; `deadline` (a time.monotonic() value) bounds the whole answer.
    """
    base = _base_url()
    model = model_name()
    parts: list[str] = []
    finish = "stop"
    try:
        with httpx.stream(
            "POST",
            f"{base}/v1/chat/completions",
            json=_body(model, turns, stream=True),
            headers=_headers(),
            timeout=_timeout(),
        ) as response:
            if response.status_code >= 400:
                response.read()
                response.raise_for_status()
            for line in response.iter_lines():
                piece = _parse_event(line)
                if deadline is not None and time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the reply took longer than its deadline")
                if piece is None:
                    continue
                parts.append(piece.text)
                if piece.finish_reason is not None:
                    finish = piece.finish_reason
                    break
            else:
                raise InferenceUnavailable("The assistant stopped answering. Try again later.")
    except httpx.HTTPError as error:
        raise _unavailable(error) from error
    return Reply(text="".join(parts), model=model, finish_reason=finish)


def _finish(reason: object) -> str:
    return "length" if reason == "length" else "stop"


async def stream_reply(turns: Sequence[Turn]) -> AsyncIterator[tuple[str, Piece]]:
    """(model, piece) for each piece of the reply as the server streams it.

    The timeout applies to each wait for the next piece, so a long answer that keeps coming
    is fine and a server that stalls is reported as slow.
    """
    base = _base_url()
    async with httpx.AsyncClient(headers=_headers(), timeout=_timeout()) as client:
        model = await amodel_name(client)
        body = _body(model, turns, stream=True)
        try:
            async with client.stream("POST", f"{base}/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise httpx.HTTPStatusError(
                        f"{response.status_code}: {response.text[:200]}",
                        request=response.request,
                        response=response,
                    )
                async for line in response.aiter_lines():
                    piece = _parse_event(line)
                    if piece is None:
                        continue
                    yield model, piece
                    if piece.finish_reason is not None:
                        return
        except httpx.HTTPError as error:
            raise _unavailable(error) from error
    # The stream ended without a finish reason: the server went away mid-answer.
    raise InferenceUnavailable("The assistant stopped answering. Try again later.")


def _parse_event(line: str) -> Piece | None:
    """One server-sent event line as a piece, None for those that carry no text."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return Piece("", "stop")
    try:
        chunk = json.loads(data)
    except ValueError:
        return None
    if "error" in chunk:
        raise InferenceUnavailable("The assistant failed while answering. Try again.")
    choices = chunk.get("choices") or []
    if not choices:
        return None
    choice = choices[0]
    text = (choice.get("delta") or {}).get("content") or ""
    reason = choice.get("finish_reason")
    if not text and reason is None:
        return None
    return Piece(text, _finish(reason) if reason is not None else None)
