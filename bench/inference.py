"""Inference speed of `python -m ml serve` against plain `model.generate`, default model.

    .venv/bin/python bench/inference.py [--model smollm2] [--max-tokens 64] [--repeat 3]
                                        [--streams 1 8] [--port 8011]

1. `generate`: the model loaded in this process (on CUDA when there is one, like the
   server) answers the prompt greedily with `model.generate`, `--repeat` times; its time to
   first token is a `max_new_tokens=1` call.
2. the server: `python -m ml serve` started as its own process (as in production), asked
   through the official `openai` client with streaming, greedy (temperature 0), the same
   prompt and max_tokens: one stream at a time `--repeat` times, then N concurrent streams
   (`--streams`), `--repeat` rounds each. Tokens/s is completion tokens over the wall time
   from the first request sent to the last chunk received, summed over the streams of a
   round (aggregate); time to first token is until the first chunk with text.

Prints a table (medians over the rounds) and the machine's load average before and after:
timings on a shared machine are disturbed by whatever else runs, so note the load. The
targets of the serving issue: N=8 streams at least 3x the aggregate tokens/s of one, and
one stream within 10% of `generate`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

# `model.generate` runs as a user would run it: torch's default threads and OpenMP
# settings (spinning threads, the fastest on an idle machine); the server sets its own.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROMPT = "Explain in a few sentences how a bicycle works."


@dataclass
class Round:
    streams: int
    tokens: int  # completion tokens, all streams together
    seconds: float  # wall time of the round
    first_token: list[float]  # seconds to the first text, per stream

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def bench_generate(model_name: str, max_tokens: int, repeat: int) -> tuple[list[Round], str]:
    import torch

    from ml.base_model import load_model, load_tokenizer
    from ml.data import encode_prompt

    tokenizer = load_tokenizer(model_name)
    model = load_model(model_name).eval()
    device = next(model.parameters()).device
    ids = torch.tensor([encode_prompt(tokenizer, [{"role": "user", "content": PROMPT}])])
    ids = ids.to(device)  # (1, T)
    greedy = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    rounds = []
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, **greedy)  # warm-up
        for _ in range(repeat):
            started = time.perf_counter()
            model.generate(ids, max_new_tokens=1, **greedy)
            first = time.perf_counter() - started
            started = time.perf_counter()
            out = model.generate(ids, max_new_tokens=max_tokens, **greedy)  # (1, T + n)
            seconds = time.perf_counter() - started
            rounds.append(Round(1, out.shape[1] - ids.shape[1], seconds, [first]))
    info = (
        f"{device}, {torch.get_num_threads()} torch threads, {model.dtype}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    )
    del model
    return rounds, info


def start_server(model_name: str, port: int, threads: int | None) -> subprocess.Popen[bytes]:
    log = (ROOT / "var" / "bench-inference.log").open("wb")
    command = [sys.executable, "-m", "ml", "serve", "--model", model_name, "--port", str(port)]
    if threads:
        command += ["--threads", str(threads)]
    server = subprocess.Popen(  # noqa: S603
        command,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited ({server.returncode}): see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the server did not answer /health within 300 s: see {log.name}")


def one_stream(client: object, name: str, max_tokens: int) -> tuple[int, float]:
    """(completion tokens, seconds to the first text) of one streamed greedy reply."""
    started = time.perf_counter()
    first, tokens = None, 0
    stream = client.chat.completions.create(  # type: ignore[attr-defined]
        model=name,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return tokens, first if first is not None else float("nan")


def bench_server(port: int, streams: int, max_tokens: int, repeat: int) -> list[Round]:
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
    name = client.models.list().data[0].id
    one_stream(client, name, 4)  # warm-up
    rounds = []
    with ThreadPoolExecutor(max_workers=streams) as pool:
        for _ in range(repeat):
            started = time.perf_counter()
            results = list(pool.map(lambda _: one_stream(client, name, max_tokens), range(streams)))
            seconds = time.perf_counter() - started
            tokens = sum(t for t, _ in results)
            rounds.append(Round(streams, tokens, seconds, [f for _, f in results]))
    return rounds


def row(label: str, rounds: list[Round], baseline: float | None) -> str:
    rate = statistics.median(r.tokens_per_s for r in rounds)
    per_stream = statistics.median(r.tokens / r.streams for r in rounds)
    first = statistics.median(f for r in rounds for f in r.first_token)
    versus = f"{rate / baseline:6.2f}x" if baseline else "      -"
    return f"{label:<22} {per_stream:>8.0f} {rate:>10.1f} {versus} {first * 1000:>10.0f}"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument(
        "--server-threads", type=int, default=None, help="torch threads of the server"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_before = load()

    generated, device = bench_generate(args.model, args.max_tokens, args.repeat)
    baseline = statistics.median(r.tokens_per_s for r in generated)
    print(row("model.generate", generated, baseline), flush=True)  # as it goes; table below
    server = start_server(args.model, args.port, args.server_threads)
    served = {}
    try:
        for n in args.streams:
            served[n] = bench_server(args.port, n, args.max_tokens, args.repeat)
            print(row(f"server, {n} stream(s)", served[n], baseline), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)

    single = statistics.median(r.tokens_per_s for r in served[min(served)]) if served else None
    print(f"\nmodel {args.model} on {device}; prompt {PROMPT!r}, max_tokens {args.max_tokens}, ")
    print(f"greedy; medians of {args.repeat} rounds; load average before {load_before}")
    print(f"\n{'':<22} {'tokens':>8} {'tokens/s':>10} {'vs gen':>7} {'TTFT ms':>10}")
    print(f"{'':<22} {'/stream':>8} {'(total)':>10}")
    print(row("model.generate", generated, baseline))
    for n, rounds in served.items():
        label = f"server, {n} stream{'s' if n > 1 else ''}"
        print(row(label, rounds, baseline))
    if single and len(served) > 1:
        best = max(served)
        scale = statistics.median(r.tokens_per_s for r in served[best]) / single
        print(f"\n{best} streams give {scale:.2f}x the tokens/s of one (target >= 3x); one stream")
        print(f"gives {single / baseline:.2f}x generate's tokens/s (target >= 0.90x)")
    print(f"load average after {load()}")


if __name__ == "__main__":
    main()
