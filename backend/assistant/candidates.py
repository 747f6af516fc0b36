"""The model in the loop: the served model writes candidate assistant replies into growing
trees, which are then reviewed and ranked against people's replies like any other.

Each run fills a share (CHORUS_CANDIDATE_SHARE) of the assistant-reply slots open at that
moment, one slot at a time: lease it as a volunteer would, ask the model, add the reply as
`synthetic` with its `model_name` if the lease still holds. While the inference server is
down the runs back off (doubling pauses up to an hour, kept in the cache so every worker
sees them) and the slots stay with the volunteers.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

from backend.assistant import inference
from backend.assistant.inference import Turn
from backend.core.errors import InferenceUnavailable
from backend.tasks import services as tasks
from backend.trees.selectors import conversation

log = logging.getLogger(__name__)

BACKOFF_KEY = "assistant:candidates:backoff"
FIRST_PAUSE_SECONDS = 60.0
LONGEST_PAUSE_SECONDS = 3600.0


@dataclass
class CandidateRun:
    status: str  # "ok", "off", "backing_off" or "unavailable"
    written: list[str] = field(default_factory=list)  # ids of the new replies
    lost: int = 0  # slots leased whose reply could not be added (lease ran out, tree moved)
    resume_at: float | None = None  # while backing off: when the next run may try


def how_many(open_slots: int, share: float, rng: random.Random) -> int:
    """`share` of `open_slots`, rounded up or down at random so the expected number is
    exact: share 0.2 of 3 slots writes one reply in 60% of the runs, none in the others."""
    if open_slots <= 0 or share <= 0:
        return 0
    wanted = share * open_slots
    return min(open_slots, math.floor(wanted + rng.random()))


def write_candidate_replies(*, rng: random.Random | None = None) -> CandidateRun:
    share = settings.CHORUS_CANDIDATE_SHARE
    if not inference.is_enabled() or share <= 0:
        return CandidateRun(status="off")
    pause = cache.get(BACKOFF_KEY)
    if pause and pause["until"] > time.time():
        return CandidateRun(status="backing_off", resume_at=pause["until"])
    rng = rng or random.Random()
    run = CandidateRun(status="ok")
    try:
        model = inference.model_name()
        budget = settings.CHORUS_CANDIDATE_MAX_PER_RUN
        for lang in settings.CHORUS_LANGUAGES:
            slots = tasks.open_model_reply_slots(lang=lang)
            for slot_id, tree_id in slots[: min(how_many(len(slots), share, rng), budget)]:
                budget -= _fill(run, slot_id=slot_id, tree_id=tree_id, model=model)
    except InferenceUnavailable as error:
        run.status = "unavailable"
        run.resume_at = _back_off(error)
        return run
    cache.delete(BACKOFF_KEY)
    if run.written or run.lost:
        log.info("candidate replies: %d written, %d dropped", len(run.written), run.lost)
    return run


def _fill(run: CandidateRun, *, slot_id, tree_id, model: str) -> int:  # type: ignore[no-untyped-def]
    """Lease, ask, add one reply; 1 when a lease was taken (it counts against the budget)."""
    # The model holds a slot as long as a volunteer may, and stops writing before it ends.
    seconds = settings.CHORUS_TASK_LEASE_MINUTES * 60
    lease = tasks.lease_slot_for_model(slot_id=slot_id, tree_id=tree_id, seconds=seconds)
    if lease is None:
        return 0  # a volunteer took it meanwhile
    try:
        turns = [
            Turn(role="user" if m.role == "prompter" else "assistant", content=m.text)
            for m in conversation(slot_id)
        ]
        reply = inference.complete_reply(turns, deadline=time.monotonic() + seconds - 5)
    except BaseException:
        tasks.release_model_lease(lease=lease)
        raise
    message = tasks.submit_model_reply(
        lease=lease, text=reply.text, model_name=reply.model or model
    )
    if message is None:
        run.lost += 1
    else:
        run.written.append(str(message.id))
    return 1


def _back_off(error: InferenceUnavailable) -> float:
    """Pause the runs: 1 min after the first failure, doubling up to an hour."""
    failures = (cache.get(BACKOFF_KEY) or {}).get("failures", 0) + 1
    pause = min(FIRST_PAUSE_SECONDS * 2 ** (failures - 1), LONGEST_PAUSE_SECONDS)
    until = time.time() + pause
    cache.set(BACKOFF_KEY, {"until": until, "failures": failures}, timeout=None)
    log.warning(
        "candidate replies paused for %.0f s after %d failure(s): %s",
        pause,
        failures,
        error.message,
    )
    return until
