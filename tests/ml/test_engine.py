"""The engine batches concurrent requests and gives each the text plain generation would."""

from __future__ import annotations

import threading

import pytest
import torch

from ml.base_model import load_model, load_tokenizer
from ml.data import encode_prompt
from ml.engine import Engine, Event, SamplingParams

QUESTIONS = [
    "How can I find the best plan for my needs",
    "What is the capital",
    "Write a short story about a dog who wants to learn the piano please",
    "Hello",
]


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_model(str(tiny_model)), load_tokenizer(str(tiny_model))


@pytest.fixture
def engine(parts):
    engine = Engine(*parts, max_batch=8)
    engine.start()
    yield engine
    engine.stop()


class Collector:
    """Gathers the events of several requests; `wait()` returns their texts and last events."""

    def __init__(self, count: int) -> None:
        self.texts = [""] * count
        self.last: list[Event | None] = [None] * count
        self.done = threading.Semaphore(0)

    def callback(self, index: int):
        def on_event(event: Event) -> None:
            self.texts[index] += event.text
            if event.finish_reason:
                self.last[index] = event
                self.done.release()

        return on_event

    def wait(self) -> tuple[list[str], list[Event]]:
        for _ in self.texts:
            assert self.done.acquire(timeout=60), "a request never finished"
        return self.texts, [e for e in self.last if e is not None]


def prompts(tokenizer) -> list[list[int]]:
    return [encode_prompt(tokenizer, [{"role": "user", "content": q}]) for q in QUESTIONS]


def test_batched_greedy_decoding_gives_what_generate_gives_alone(parts, engine):
    model, tokenizer = parts
    expected = []
    for ids in prompts(tokenizer):
        out = model.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)
        expected.append(tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True))
    collector = Collector(len(QUESTIONS))

    for index, ids in enumerate(prompts(tokenizer)):  # arriving while others decode
        engine.submit(ids, SamplingParams(temperature=0, max_tokens=12), collector.callback(index))
    texts, _ = collector.wait()

    assert texts == expected


def test_concurrent_requests_share_decode_steps(parts, engine):
    _, tokenizer = parts
    collector = Collector(len(QUESTIONS))
    params = [SamplingParams(temperature=1.0, top_p=0.9, max_tokens=40, seed=i) for i in range(4)]

    for index, (ids, p) in enumerate(zip(prompts(tokenizer), params, strict=True)):
        engine.submit(ids, p, collector.callback(index))
    _, last = collector.wait()

    assert engine.stats.max_rows_in_step > 1
    assert engine.stats.decode_steps < sum(e.completion_tokens for e in last)


def test_a_seed_makes_sampling_repeatable(parts, engine):
    _, tokenizer = parts
    ids = prompts(tokenizer)[0]
    collector = Collector(2)
    for index in range(2):
        params = SamplingParams(temperature=1.0, max_tokens=20, seed=5)
        engine.submit(ids, params, collector.callback(index))
    texts, _ = collector.wait()
    assert texts[0] == texts[1]


def test_max_tokens_and_stop_strings_end_a_reply(parts, engine):
    _, tokenizer = parts
    ids = prompts(tokenizer)[0]
    collector = Collector(1)
    engine.submit(ids, SamplingParams(temperature=0, max_tokens=5), collector.callback(0))
    (text,), (last,) = collector.wait()
    assert (last.finish_reason, last.completion_tokens) == ("length", 5)

    stop = text.split()[2]  # a word the greedy reply is known to contain
    collector = Collector(1)
    params = SamplingParams(temperature=0, max_tokens=5, stop=(stop,))
    engine.submit(ids, params, collector.callback(0))
    (stopped,), (last,) = collector.wait()
    assert last.finish_reason == "stop"
    assert stopped == text[: text.index(stop)]
