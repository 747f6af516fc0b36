"""The server speaks OpenAI's chat API: the official client works with it, streaming and
not, bad requests get a 400 in OpenAI's error shape, and concurrent requests are batched."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.ml.conftest import serve_in_thread

openai = pytest.importorskip("openai", reason="the openai client is not installed ([dev])")

MODEL = "chorus-test"
HELLO = [{"role": "user", "content": "How can I find the best plan"}]


@pytest.fixture(scope="module")
def server(tiny_model):
    yield from serve_in_thread(tiny_model, max_tokens_limit=500, max_body_bytes=20_000)


@pytest.fixture
def client(server):
    url, _ = server
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_the_client_lists_the_served_model(client):
    assert [m.id for m in client.models.list()] == [MODEL]


def test_the_client_gets_a_whole_reply(client):
    reply = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, temperature=0)

    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 8
    assert reply.usage.prompt_tokens > 0
    if choice.finish_reason == "length":
        assert reply.usage.completion_tokens == 8


def test_the_client_streams_a_reply_in_pieces(client):
    whole = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=10, temperature=0
    )
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )

    chunks = list(stream)

    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1
    assert "".join(pieces) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finished = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finished == [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_the_stream_is_server_sent_events_ending_in_done(server):
    url, _ = server
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"model": "gpt-4"}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0]"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 501}, "max_tokens"),
        ({"max_tokens": "ten"}, "max_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"stream": "yes"}, "stream"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"n": 2}, "n"),
    ],
)
def test_a_bad_request_gets_a_400_naming_the_parameter(server, change, param):
    url, _ = server
    body = {"model": MODEL, "messages": HELLO, **change}
    response = httpx.post(f"{url}/v1/chat/completions", json=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_the_client_raises_on_an_unknown_model(client):
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        client.chat.completions.create(model="gpt-4", messages=HELLO)


def test_a_body_that_is_not_json_gets_a_400(server):
    url, _ = server
    response = httpx.post(f"{url}/v1/chat/completions", content=b"{not json")
    assert response.status_code == 400


def test_a_body_over_the_size_limit_gets_a_413(server):
    url, _ = server
    huge = [{"role": "user", "content": "word " * 10_000}]
    response = httpx.post(f"{url}/v1/chat/completions", json={"model": MODEL, "messages": huge})
    assert response.status_code == 413
    assert response.json()["error"]["message"]


def test_health_reports_the_model_and_engine(server):
    url, _ = server
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok"
    assert health["model"] == MODEL
    assert "max_rows_in_step" in health["engine"]


def test_concurrent_requests_are_decoded_together(server, client):
    _, engine = server

    def ask(seed: int) -> int:
        stream = client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=300, temperature=1.0, seed=seed, stream=True
        )
        return sum(1 for _ in stream)

    steps_before, rows_before = engine.stats.decode_steps, engine.stats.rows_in_steps
    with ThreadPoolExecutor(8) as pool:
        chunk_counts = list(pool.map(ask, range(8)))

    assert all(count > 2 for count in chunk_counts)
    assert engine.stats.max_rows_in_step > 1
    steps = engine.stats.decode_steps - steps_before
    assert engine.stats.rows_in_steps - rows_before > 1.5 * steps  # rows shared the steps


def test_the_serve_command_lets_idle_cpu_threads_sleep_and_takes_a_thread_count(monkeypatch):
    from ml.__main__ import main

    monkeypatch.setenv("OMP_WAIT_POLICY", "unset")  # so that teardown restores the original
    monkeypatch.delenv("OMP_WAIT_POLICY")
    seen = {}

    def fake_serve(config):
        seen.update(config=config, policy=os.environ.get("OMP_WAIT_POLICY"))

    monkeypatch.setattr("ml.serve.serve", fake_serve)

    main(["serve", "--port", "8123", "--threads", "1"])

    assert seen["policy"] == "PASSIVE"
    assert (seen["config"].port, seen["config"].threads) == (8123, 1)
