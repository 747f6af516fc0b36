"""An OpenAI-compatible chat server: `python -m ml serve --model ... --port 8001`.

- `GET /v1/models`, `GET /v1/models/{id}`: the one model served;
- `POST /v1/chat/completions`: non-streaming, or `stream: true` as server-sent events
  (`data: {chunk}` lines, then `data: [DONE]`), with temperature, top_p, max_tokens
  (or max_completion_tokens), stop and seed;
- `GET /health`: liveness and the engine's counters.

Bad requests get a 400 in OpenAI's error shape
(`{"error": {"message", "type", "param", "code"}}`), bodies over the size limit a 413.
All requests share one `Engine`, which batches their decode steps.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ml.data import encode_prompt
from ml.engine import Engine, Event, SamplingParams

ROLES = ("system", "user", "assistant")
MAX_STOPS = 4


@dataclass
class ServeConfig:
    """Settings of `python -m ml serve`."""

    model: str | None = None  # folder, hub id, or None for the default SmolLM2-135M-Instruct
    name: str | None = None  # the model id clients ask for (default: the folder's name)
    host: str = "127.0.0.1"
    port: int = 8001
    max_batch: int = 16  # rows decoded together; more requests wait for a free row
    max_tokens_limit: int = 2048  # the largest max_tokens a request may ask for
    default_max_tokens: int = 512  # when the request does not say
    max_prompt_tokens: int = 4096  # longer conversations are refused
    max_body_bytes: int = 1_000_000  # larger request bodies are refused with 413
    threads: int | None = None  # torch's CPU threads; None: one per core but one (CPU)


class BadRequest(Exception):
    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    params: SamplingParams
    stream: bool
    include_usage: bool


def parse_chat_request(body: Any, *, served: str, config: ServeConfig) -> ChatRequest:
    """The checked request, or BadRequest naming the parameter at fault."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str):
        raise BadRequest("`model` is required and must be a string.", param="model")
    if model != served:
        raise BadRequest(
            f"The model `{model}` does not exist; this server serves `{served}`.",
            param="model",
            code="model_not_found",
        )
    messages = _messages(body.get("messages"))
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = min(config.default_max_tokens, config.max_tokens_limit)
    if not _is_int(max_tokens) or not 1 <= max_tokens <= config.max_tokens_limit:
        raise BadRequest(
            f"`max_tokens` must be an integer from 1 to {config.max_tokens_limit}.",
            param="max_tokens",
        )
    temperature = _number(body, "temperature", 1.0, low=0.0, high=2.0)
    top_p = _number(body, "top_p", 1.0, low=0.0, high=1.0)
    if top_p == 0:
        raise BadRequest("`top_p` must be greater than 0.", param="top_p")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("`stream` must be a boolean.", param="stream")
    n = body.get("n", 1)
    if n != 1 or isinstance(n, bool):
        raise BadRequest("Only `n` = 1 is supported.", param="n")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise BadRequest("`seed` must be an integer.", param="seed")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise BadRequest("`stream_options` must be an object.", param="stream_options")
    params = SamplingParams(
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=_stops(body.get("stop")),
        seed=seed,
    )
    return ChatRequest(messages, params, stream, bool(options.get("include_usage")))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(body: dict[str, Any], name: str, default: float, *, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"`{name}` must be a number from {low} to {high}.", param=name)
    return float(value)


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise BadRequest("`messages` must be a non-empty list.", param="messages")
    messages = []
    for index, message in enumerate(value):
        param = f"messages[{index}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadRequest(
                f"Each message needs a `role` among {', '.join(ROLES)}.", param=f"{param}.role"
            )
        content = message.get("content")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
                raise BadRequest("Only text content parts are supported.", param=param)
            content = "".join(str(part.get("text", "")) for part in content)
        if not isinstance(content, str):
            raise BadRequest("Each message's `content` must be a string.", param=param)
        messages.append({"role": message["role"], "content": content})
    if messages[-1]["role"] == "assistant":
        raise BadRequest("The last message must not be the assistant's.", param="messages")
    return messages


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOPS
        or not all(isinstance(s, str) and s for s in stops)
    ):
        raise BadRequest(
            f"`stop` must be a non-empty string or a list of up to {MAX_STOPS} of them.",
            param="stop",
        )
    return tuple(stops)


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, refusing it (413) past `limit` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    try:
        return json.loads(body)
    except ValueError as error:
        raise BadRequest(f"The body is not valid JSON: {error}") from error


class BodyTooLarge(Exception):
    pass


def create_app(engine: Engine, *, name: str, config: ServeConfig) -> Starlette:
    tokenizer = engine.tokenizer
    created = int(time.time())
    model_card = {"id": name, "object": "model", "created": created, "owned_by": "chorus"}

    async def health(request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "model": name, "engine": asdict(engine.stats)},
            headers={"cache-control": "no-store"},
        )

    async def list_models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [model_card]})

    async def get_model(request: Request) -> Response:
        if request.path_params["model"] != name:
            return error_response(404, "No such model.", param="model", code="model_not_found")
        return JSONResponse(model_card)

    async def chat_completions(request: Request) -> Response:
        try:
            body = await read_json(request, config.max_body_bytes)
            chat = parse_chat_request(body, served=name, config=config)
            prompt = encode_prompt(tokenizer, chat.messages)
            if len(prompt) > config.max_prompt_tokens:
                raise BadRequest(
                    f"The conversation has {len(prompt)} tokens; at most "
                    f"{config.max_prompt_tokens} are accepted.",
                    param="messages",
                    code="context_length_exceeded",
                )
        except BodyTooLarge:
            return error_response(
                413, f"The request body is larger than {config.max_body_bytes} bytes."
            )
        except BadRequest as error:
            return error_response(400, error.message, param=error.param, code=error.code)

        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()

        def deliver(event: Event) -> None:  # called on the engine's thread
            loop.call_soon_threadsafe(events.put_nowait, event)

        job = engine.submit(prompt, chat.params, deliver)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if chat.stream:
            chunks = _stream(events, completion_id, name, chat.include_usage)
            return StreamingResponse(
                _cancel_when_done(chunks, engine, job),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        try:
            parts, last = [], None
            while last is None or last.finish_reason is None:
                last = await events.get()
                parts.append(last.text)
        finally:
            engine.cancel(job)  # a no-op when done; stops the row when the client left
        if last.finish_reason.startswith("error"):
            return error_response(500, f"Generation failed ({last.finish_reason}).")
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(parts)},
                        "finish_reason": last.finish_reason,
                    }
                ],
                "usage": _usage(last),
            }
        )

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/v1/models", list_models),
            Route("/v1/models/{model:path}", get_model),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ]
    )


def _usage(event: Event) -> dict[str, int]:
    return {
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "total_tokens": event.prompt_tokens + event.completion_tokens,
    }


async def _stream(
    events: asyncio.Queue[Event], completion_id: str, name: str, include_usage: bool
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    while True:
        event = await events.get()
        if event.finish_reason and event.finish_reason.startswith("error"):
            error = {
                "message": f"Generation failed ({event.finish_reason}).",
                "type": "server_error",
            }
            yield f"data: {json.dumps({'error': error})}\n\n"
            break
        if event.text:
            yield chunk({"content": event.text})
        if event.finish_reason:
            yield chunk({}, event.finish_reason)
            if include_usage:
                body = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": name,
                    "choices": [],
                    "usage": _usage(event),
                }
                yield f"data: {json.dumps(body)}\n\n"
            break
    yield "data: [DONE]\n\n"


async def _cancel_when_done(
    chunks: AsyncIterator[str], engine: Engine, job: Any
) -> AsyncIterator[str]:
    """Pass the chunks on; when the client disconnects mid-stream, free its batch row."""
    try:
        async for item in chunks:
            yield item
    finally:
        engine.cancel(job)


def serve(config: ServeConfig) -> None:
    import torch
    import uvicorn

    from ml.base_model import display_name, load_model, load_tokenizer

    if config.threads:
        torch.set_num_threads(config.threads)
    elif not torch.cuda.is_available():
        # One core stays with the HTTP loop, the tokenizer and the streams' events: on 2
        # cores, 1 torch thread gave 3.9x more tokens/s for 8 streams than for one, and 2
        # threads 2.4x (bench/inference.py).
        torch.set_num_threads(max(1, torch.get_num_threads() - 1))
    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model)
    engine = Engine(model, tokenizer, max_batch=config.max_batch)
    engine.start()
    name = config.name or display_name(config.model)
    app = create_app(engine, name=name, config=config)
    print(f"Serving {name} on http://{config.host}:{config.port}/v1", flush=True)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
    finally:
        engine.stop()
