"""Batched text generation for the server: one thread runs the model for every request.

Requests arrive at any time. The engine keeps one batch of running rows with one shared
key/value cache; each loop it
1. prefills the newly arrived prompts (left-padded into one batch), samples their first
   token and merges their cache into the running one (padding the shorter one on the left);
2. runs one decode step for all running rows together: one token each, sampled with the
   row's own temperature/top_p, checked against the row's own stop conditions;
3. drops finished or cancelled rows from the batch and the cache.

On a CPU one decode step for 8 rows costs little more than for one (the step is bound by
reading the weights and by per-operator overhead), so concurrent requests get close to
8x the aggregate throughput of one. Every row's text goes to its callback as it comes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Event:
    """A piece of one request's reply; the last one has a finish_reason."""

    text: str
    finish_reason: str | None = None  # "stop" (end of turn or stop string) | "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(eq=False)
class Request:
    prompt_ids: list[int]
    params: SamplingParams
    on_event: Callable[[Event], None]
    generator: torch.Generator | None = None
    generated: list[int] = field(default_factory=list)
    sent_chars: int = 0  # how much of the decoded text went out already
    cancelled: bool = False
    submitted_at: float = field(default_factory=time.monotonic)


@dataclass
class EngineStats:
    decode_steps: int = 0
    prefills: int = 0
    tokens: int = 0
    max_rows_in_step: int = 0  # the most rows one decode step ran: >1 means batching happened
    rows_in_steps: int = 0  # sum over decode steps of their rows


class Engine:
    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_batch: int = 16,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        self.stats = EngineStats()
        self._pending: list[Request] = []
        self._wakeup = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        # The running batch: rows, their cache and its mask, the tokens to feed next.
        self._rows: list[Request] = []
        self._cache: DynamicCache | None = None
        self._mask = torch.zeros(0, 0, dtype=torch.long, device=self.device)  # (B, T)
        self._positions = torch.zeros(0, dtype=torch.long, device=self.device)  # (B,)
        self._next = torch.zeros(0, dtype=torch.long, device=self.device)  # (B,)

    # --- the interface (any thread) ---------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chorus-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopped = True
            self._wakeup.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def submit(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        on_event: Callable[[Event], None],
    ) -> Request:
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(params.seed)
        request = Request(list(prompt_ids), params, on_event, generator=generator)
        with self._wakeup:
            self._pending.append(request)
            self._wakeup.notify()
        return request

    def cancel(self, request: Request) -> None:
        """Stop generating for a request whose client went away (takes effect next step)."""
        request.cancelled = True

    # --- the loop (engine thread) -----------------------------------------------------

    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._wakeup:
                    while not self._pending and not self._rows and not self._stopped:
                        self._wakeup.wait()
                    if self._stopped:
                        return
                    room = self.max_batch - len(self._rows)
                    arrived, self._pending = self._pending[:room], self._pending[room:]
                try:
                    arrived = [r for r in arrived if not r.cancelled]
                    if arrived:
                        self._prefill(arrived)
                    if self._rows:
                        self._decode()
                except Exception as error:  # a failed step fails its rows, not the server
                    logger.exception("generation step failed")
                    for request in [*self._rows, *arrived]:
                        request.on_event(Event(text="", finish_reason=f"error: {error}"))
                    self._reset_batch()

    def _reset_batch(self) -> None:
        self._rows, self._cache = [], None
        self._mask = self._mask[:0, :0]
        self._positions, self._next = self._positions[:0], self._next[:0]

    def _prefill(self, requests: list[Request]) -> None:
        """Run the new prompts, sample their first tokens, merge them into the batch."""
        lengths = [len(r.prompt_ids) for r in requests]
        width = max(lengths)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.tensor(
            [[pad] * (width - n) + r.prompt_ids for r, n in zip(requests, lengths, strict=True)],
            device=self.device,
        )  # (N, L) left-padded
        mask = torch.tensor(
            [[0] * (width - n) + [1] * n for n in lengths], device=self.device
        )  # (N, L)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (N, L)
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        if width > min(lengths):
            _zero_padding(cache, mask)  # padded slots hold junk: make sure it stays inert
        self.stats.prefills += 1
        first = self._sample(out.logits[:, -1, :], requests)  # (N,)
        keep = self._accept(requests, first)
        if not keep:
            return
        if len(keep) < len(requests):
            index = torch.tensor(keep, device=self.device)
            cache.batch_select_indices(index)
            mask, first = mask[index], first[index]
            requests = [requests[i] for i in keep]
            lengths = [lengths[i] for i in keep]
        self._merge(requests, cache, mask, torch.tensor(lengths, device=self.device), first)

    def _merge(
        self,
        requests: list[Request],
        cache: DynamicCache,
        mask: torch.Tensor,  # (N, L)
        positions: torch.Tensor,  # (N,) where each new row's next token goes
        first: torch.Tensor,  # (N,)
    ) -> None:
        if self._cache is None or not self._rows:
            self._rows, self._cache, self._mask = list(requests), cache, mask
            self._positions, self._next = positions, first
            return
        old_len, new_len = self._mask.shape[1], mask.shape[1]
        width = max(old_len, new_len)
        for old, new in zip(_layers(self._cache), _layers(cache), strict=True):
            old.keys = torch.cat(
                [_pad_left(old.keys, width - old_len), _pad_left(new.keys, width - new_len)]
            )  # (B + N, H, T, D)
            old.values = torch.cat(
                [_pad_left(old.values, width - old_len), _pad_left(new.values, width - new_len)]
            )
        self._mask = torch.cat(
            [_pad_left(self._mask, width - old_len), _pad_left(mask, width - new_len)]
        )  # (B + N, T)
        self._rows += requests
        self._positions = torch.cat([self._positions, positions])
        self._next = torch.cat([self._next, first])

    def _decode(self) -> None:
        """One token for every running row."""
        rows = len(self._rows)
        ones = torch.ones(rows, 1, dtype=self._mask.dtype, device=self.device)
        self._mask = torch.cat([self._mask, ones], dim=1)  # (B, T + 1)
        out = self.model(
            input_ids=self._next[:, None],  # (B, 1)
            attention_mask=self._mask,
            position_ids=self._positions[:, None],  # (B, 1)
            cache=self._cache,
            use_cache=True,
        )
        self._positions = self._positions + 1
        self.stats.decode_steps += 1
        self.stats.rows_in_steps += rows
        self.stats.max_rows_in_step = max(self.stats.max_rows_in_step, rows)
        tokens = self._sample(out.logits[:, -1, :], self._rows)  # (B,)
        self._next = tokens
        keep = self._accept(self._rows, tokens)
        if len(keep) < rows:
            self._select(keep)

    def _accept(self, requests: list[Request], tokens: torch.Tensor) -> list[int]:
        """Record each row's new token and send its text; the indices of the rows that go on."""
        keep: list[int] = []
        for index, (request, token) in enumerate(zip(requests, tokens.tolist(), strict=True)):
            self.stats.tokens += 1
            if request.cancelled:
                continue
            if token in self.eos_ids:
                self._finish(request, "stop")
                continue
            request.generated.append(token)
            if self._emit(request):
                continue
            if len(request.generated) >= request.params.max_tokens:
                self._finish(request, "length")
                continue
            keep.append(index)
        return keep

    def _emit(self, request: Request) -> bool:
        """Send the text that can no longer change; True when a stop string ended it."""
        text = str(self.tokenizer.decode(request.generated, skip_special_tokens=True))
        stops = request.params.stop
        if stops:
            # A stop string may straddle the last token: look back as far as the longest one.
            start = max(0, request.sent_chars - max(len(s) for s in stops))
            found = [(text.find(s, start), s) for s in stops if text.find(s, start) >= 0]
            if found:
                cut = min(found)[0]
                self._finish(request, "stop", text=text[:cut])
                return True
        safe = len(text) - _held_back(text, stops)
        if safe > request.sent_chars:
            request.on_event(Event(text=text[request.sent_chars : safe]))
            request.sent_chars = safe
        return False

    def _finish(self, request: Request, reason: str, *, text: str | None = None) -> None:
        if text is None:
            text = str(self.tokenizer.decode(request.generated, skip_special_tokens=True))
        request.on_event(
            Event(
                text=text[request.sent_chars :],
                finish_reason=reason,
                prompt_tokens=len(request.prompt_ids),
                completion_tokens=len(request.generated),
            )
        )
        request.sent_chars = len(text)

    def _select(self, keep: list[int]) -> None:
        """Keep only the rows `keep` and cut cache columns no remaining row uses."""
        if not keep:
            self._reset_batch()
            return
        assert self._cache is not None
        index = torch.tensor(keep, device=self.device)
        self._mask = self._mask[index]
        used = self._mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0  # leading columns that are padding for all
        self._mask = self._mask[:, start:]
        for layer in _layers(self._cache):
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]
        self._rows = [self._rows[i] for i in keep]
        self._positions, self._next = self._positions[index], self._next[index]

    def _sample(self, logits: torch.Tensor, requests: Sequence[Request]) -> torch.Tensor:
        """One token per row from `logits` (B, V), with each row's own temperature/top_p."""
        logits = logits.float()
        greedy = logits.argmax(dim=-1)  # (B,)
        if all(r.params.temperature == 0 for r in requests):
            return greedy
        temperature = torch.tensor(
            [max(r.params.temperature, 1e-5) for r in requests], device=logits.device
        )  # (B,)
        probs = torch.softmax(logits / temperature[:, None], dim=-1)  # (B, V)
        top_p = torch.tensor([r.params.top_p for r in requests], device=logits.device)  # (B,)
        order: torch.Tensor | None = None
        if bool((top_p < 1).any()):
            probs, order = probs.sort(dim=-1, descending=True)  # (B, V) each
            before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above
            probs = probs.masked_fill(before > top_p[:, None], 0.0)
        picked = torch.stack(
            [
                torch.multinomial(probs[i], 1, generator=r.generator)[0]
                for i, r in enumerate(requests)
            ]
        )  # (B,) in sorted order when top_p sorted
        if order is not None:
            picked = order.gather(1, picked[:, None])[:, 0]
        is_greedy = torch.tensor([r.params.temperature == 0 for r in requests])
        return torch.where(is_greedy.to(logits.device), greedy, picked)


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    return ids


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters might still change: a half-decoded character, or the
    start of a stop string that the next tokens may complete."""
    if text.endswith("\ufffd"):
        return 1
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def _pad_left(tensor: torch.Tensor, size: int) -> torch.Tensor:
    """Zeros prepended along the sequence axis: dim 1 of a mask (B, T), dim 2 of keys or
    values (B, H, T, D)."""
    if size == 0:
        return tensor
    dim = 1 if tensor.dim() == 2 else 2
    shape = list(tensor.shape)
    shape[dim] = size
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _zero_padding(cache: DynamicCache, mask: torch.Tensor) -> None:
    keep = mask.bool()[:, None, :, None]  # (N, 1, L, 1)
    for layer in _layers(cache):
        layer.keys = torch.where(keep, layer.keys, 0.0)
        layer.values = torch.where(keep, layer.values, 0.0)


def _layers(cache: DynamicCache) -> list[Any]:
    """The cache's per-layer stores, each with `keys` and `values` (B, H, T, D)."""
    return list(cache.layers)
