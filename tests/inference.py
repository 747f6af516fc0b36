"""A real inference server for the assistant's tests: a tiny, randomly initialised model
(tests/ml/conftest.py builds and serves it), answering gibberish over the real
OpenAI-compatible HTTP API; and addresses where no server answers, or answers too slowly.

tests/conftest.py makes the fixtures available to every test.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

MODEL_ID = "chorus-test"


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The base URL of `python -m ml serve`'s app for a tiny model, in this process."""
    from tests.conftest import SHARED_DATA

    ml = pytest.importorskip("tests.ml.conftest", reason="the [ml] extra is not installed")
    path = SHARED_DATA / "oasst_en_100_trees.jsonl"
    if not path.exists():
        pytest.skip(f"the sample data {path} is absent (it lives in ../shared/data)")
    # A vocabulary of some thousand words: the untrained model picks its end token about
    # once in that many, so its replies run on for many pieces.
    model = ml.build_tiny_model(tmp_path_factory.mktemp("assistant") / "tiny", [path.read_text()])
    for url, _engine in ml.serve_in_thread(model, default_max_tokens=64):
        yield url


def _forget_backoff() -> None:
    """Forget an earlier test's pause of the assistant's candidates. Only that key: the
    cache may share its Redis database with the broker of another test process, whose
    queues a FLUSHDB would empty under it."""
    from django.core.cache import cache

    from backend.assistant.candidates import BACKOFF_KEY

    cache.delete(BACKOFF_KEY)


@pytest.fixture
def inference(settings, tiny_server: str) -> str:  # type: ignore[no-untyped-def]
    """Point INFERENCE_URL at the tiny model."""
    _forget_backoff()
    settings.INFERENCE_URL = tiny_server
    settings.INFERENCE_MODEL = ""
    settings.INFERENCE_MAX_TOKENS = 24
    settings.INFERENCE_TIMEOUT = 30.0
    return tiny_server


def closed_port_url() -> str:
    """An address where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def inference_down(settings) -> str:  # type: ignore[no-untyped-def]
    _forget_backoff()
    settings.INFERENCE_URL = closed_port_url()
    settings.INFERENCE_MODEL = ""
    settings.INFERENCE_CONNECT_TIMEOUT = 2.0
    return settings.INFERENCE_URL


@pytest.fixture
def inference_stalled(settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server that takes connections and never answers (the kernel accepts them)."""
    _forget_backoff()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        settings.INFERENCE_URL = url
        settings.INFERENCE_MODEL = MODEL_ID
        settings.INFERENCE_TIMEOUT = 0.5
        yield url
