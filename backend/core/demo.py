"""Demo data for a local Chorus: a login for every role, an API key, and conversation trees
in every state, so a newcomer who runs `make run` has something to look at and to work on.

`seed_demo()` builds it the way real data comes about, as far as that goes:

- Trees that volunteers are still working on (initial review, growing, halted, aborted) are
  driven through the task services (`request_task` / `submit_task`) by the demo volunteers,
  with the tree limits of the settings; the moderator halts one with `halt_tree`.
- Finished and imported-looking trees (ready_for_export with ranks, backlog_ranking with
  unranked sibling replies, prompts waiting in the lottery) are OpenAssistant JSON lines
  built here and read by `backend.trees.importing.import_oasst`.
- The ranking tree is an imported backlog tree promoted by the tree rules
  (`advance_tree_by_id`) and ranked by a volunteer through a real task.
- ready_for_scoring and scoring_failed last only a moment in real life (scoring runs as
  soon as a tree is ready), so those two trees get their rankings and are then put in
  their state directly, without the scoring job; see `_hold_state`.

Every text is written for this demo. Re-running is safe: when the demo users exist the
command only prints the logins again. `make run` calls it on every start.

The API key: its plaintext is stored nowhere in the database (only its hash), so a copy is
kept in `var/demo-api-key.txt` (git-ignored, readable by its owner only; the folder is
CHORUS_VAR_DIR when set) to be printed again on later runs. Deleting the file loses
nothing but that copy.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from backend.accounts.models import ApiClient, Role, User
from backend.accounts.services import create_api_client, create_user, hash_api_key, split_api_key
from backend.core.demo_content import (
    COMPOST_BIN,
    COMPOST_FOLLOW_UP,
    COMPOST_PROMPT,
    COMPOST_WORMS,
    FRENCH_PROMPT,
    GUITAR,
    HAIKU,
    IMPORTED_TREES,
    PARKING_NOTE,
    PARKING_PROMPT,
    PHOTOSYNTHESIS,
    RECURSION_PROMPT,
    SKY_ANSWER,
    SKY_PROMPT,
    DemoTree,
    Turn,
)
from backend.core.errors import ChorusError
from backend.tasks.models import Task, TaskType
from backend.tasks.services import request_task, submit_task
from backend.trees import rules
from backend.trees import services as trees
from backend.trees.importing import import_oasst
from backend.trees.models import Message, MessageTree, StateChange
from backend.trees.rules import State
from backend.trees.selectors import tree_facts

# Demo logins only: printed on every start, so never use them anywhere that matters.
DEMO_PASSWORD = "chorus-demo"  # noqa: S105
API_KEY_FILE = "demo-api-key.txt"
API_KEY_OWNER = "ada"
# Message ids of the imported trees are derived from this and the tree's name, so they are
# the same on every machine and a second import of the same tree is skipped.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://chorus.invalid/demo")


class DemoSeedError(RuntimeError):
    """The demo could not be built as planned (the message says where it went wrong)."""


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    languages: tuple[str, ...]
    display_name: str


DEMO_USERS = (
    DemoUser("ada", Role.VOLUNTEER, ("en",), "Ada"),
    DemoUser("ben", Role.VOLUNTEER, ("en",), "Ben"),
    DemoUser("chloe", Role.VOLUNTEER, ("en", "de"), "Chloé"),
    DemoUser("dieter", Role.VOLUNTEER, ("de", "en"), "Dieter"),
    DemoUser("mia", Role.MODERATOR, ("en", "de"), "Mia"),
    DemoUser("admin", Role.ADMIN, ("en", "de"), "Admin"),
)
DEMO_USERNAMES = tuple(u.username for u in DEMO_USERS)


def _message_id(tree: DemoTree, path: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{tree.name}/{path}"))


def _labels(role: str, rank: int | None, count: int) -> dict[str, dict[str, float]]:
    """Review means for an imported message: clean, with quality following the rank."""
    quality = {None: 0.75, 0: 0.85, 1: 0.65, 2: 0.4}.get(rank, 0.4)
    values = {"spam": 0.0, "lang_mismatch": 0.0, "pii": 0.0, "quality": quality}
    if role == "assistant":
        values["helpfulness"] = quality
    return {name: {"value": value, "count": count} for name, value in values.items()}


def export_line(tree: DemoTree, users: Mapping[str, User], *, now: datetime) -> str:
    """The tree as one line of an OpenAssistant trees export."""
    reviews = settings.CHORUS_TREE["reviews_per_message"]
    created = now - timedelta(days=tree.days_ago)
    step = iter(range(10_000))

    def node(turn: Turn, path: str, parent_id: str | None, depth: int) -> dict[str, Any]:
        message_id = _message_id(tree, path)
        role = "prompter" if depth % 2 == 0 else "assistant"
        return {
            "message_id": message_id,
            "parent_id": parent_id,
            "user_id": str(users[turn.author].id),
            "created_date": (created + timedelta(minutes=47 * next(step))).isoformat(),
            "text": turn.text,
            "role": role,
            "lang": tree.lang,
            "review_count": reviews,
            "review_result": True,
            "deleted": False,
            "rank": turn.rank,
            "synthetic": False,
            "model_name": None,
            "emojis": dict(turn.emojis),
            "labels": _labels(role, turn.rank, reviews),
            "replies": [
                node(reply, f"{path}.{i}", message_id, depth + 1)
                for i, reply in enumerate(turn.replies)
            ],
        }

    root = node(tree.root, "0", None, 0)
    record: dict[str, Any] = {"message_tree_id": root["message_id"], "prompt": root}
    if tree.tree_state is not None:
        record["tree_state"] = str(tree.tree_state)
    return json.dumps(record, ensure_ascii=False)


# --- Driving the task services ------------------------------------------------------------


class Crowd:
    """The demo users doing tasks through the same services the API calls."""

    def __init__(self, users: Mapping[str, User]) -> None:
        self.users = users

    def prompt(self, author: str, text: str, *, lang: str) -> Message:
        task = request_task(user=self.users[author], task_type=TaskType.INITIAL_PROMPT, lang=lang)
        return self._write(author, task, text)

    def reply(self, author: str, parent: Message, text: str) -> Message:
        kind = TaskType.ASSISTANT_REPLY if parent.role == "prompter" else TaskType.PROMPTER_REPLY
        return self._write(author, self._lease(author, kind, parent), text)

    def review(self, reviewer: str, message: Message, **labels: float) -> None:
        if message.parent_id is None:
            kind = TaskType.LABEL_INITIAL_PROMPT
        elif message.role == "assistant":
            kind = TaskType.LABEL_ASSISTANT_REPLY
        else:
            kind = TaskType.LABEL_PROMPTER_REPLY
        task = self._lease(reviewer, kind, message)
        values = {"spam": 0.0, "lang_mismatch": 0.0, "quality": 0.75, **labels}
        self._submit(reviewer, task, {"labels": values})

    def review_fully(
        self, message: Message, reviewers: Sequence[str], count: int | None = None, **labels: float
    ) -> None:
        """Reviews from the first eligible reviewers until the tree's target (or `count`)."""
        tree = MessageTree.objects.get(pk=message.tree_id)
        needed = tree.reviews_needed if count is None else count
        for reviewer in self._others(message, reviewers, needed):
            self.review(reviewer, message, **labels)

    def rank(self, ranker: str, parent: Message, order: Sequence[Message]) -> None:
        task = self._lease(ranker, TaskType.RANK_ASSISTANT_REPLIES, parent)
        self._submit(ranker, task, {"ranking": [str(m.id) for m in order]})

    def ensure_growing(self, message: Message) -> None:
        """After its prompt is accepted a tree waits in the lottery until it is drawn; the
        draw runs on commit (at once when Celery is eager). Draw now if a worker has not yet."""
        tree = MessageTree.objects.get(pk=message.tree_id)
        if tree.state == State.PROMPT_LOTTERY_WAITING:
            trees.promote_from_lottery(lang=tree.lang)
            tree.refresh_from_db()
        if tree.state != State.GROWING:
            raise DemoSeedError(f"the demo tree {tree.id} is {tree.state}, expected growing")

    def _others(self, message: Message, candidates: Sequence[str], needed: int) -> list[str]:
        chosen = [name for name in candidates if self.users[name].pk != message.author_id]
        if len(chosen) < needed:
            raise DemoSeedError(
                f"{needed} reviews are needed per message but only {len(chosen)} demo users "
                "may review this one; lower CHORUS_REVIEWS_PER_MESSAGE for the demo"
            )
        return chosen[:needed]

    def _lease(self, username: str, kind: str, slot: Message) -> Task:
        task = request_task(user=self.users[username], task_type=kind, lang=slot.lang)
        if task.slot_id != slot.id:
            raise DemoSeedError(
                f"{username} asked for {kind} on message {slot.id} but was handed "
                f"{task.slot_id}; the demo expects a database with no other open trees"
            )
        return task

    def _write(self, author: str, task: Task, text: str) -> Message:
        result = self._submit(author, task, {"text": text.strip()})
        return Message.objects.get(pk=result)

    def _submit(self, username: str, task: Task, payload: dict[str, Any]) -> uuid.UUID:
        return submit_task(
            task_id=task.id, user=self.users[username], key=None, payload=payload
        ).result_id


def _grow_volunteer_trees(crowd: Crowd) -> None:
    """Trees that volunteers are working on, each built to its state before the next starts,
    so every task handed out is the one this script means (a language's open slots are all
    candidates for a task)."""
    en_reviewers = ("ben", "dieter", "mia", "chloe", "admin", "ada")

    # aborted_low_grade: a French prompt in the English queue; reviewers flag the language.
    french = crowd.prompt("chloe", FRENCH_PROMPT, lang="en")
    crowd.review_fully(french, en_reviewers, lang_mismatch=1.0, quality=0.5)

    # halted_by_moderator: the prompt names a real-looking person and address; it passes
    # review (personal data is flagged but is no reason to reject), and a moderator halts the
    # tree to look at it. Two reviewers flag the personal data: a third red flag would have
    # auto-moderation hide the prompt (CHORUS_AUTOMOD_RED_FLAGS) before the moderator acts.
    parking = crowd.prompt("ben", PARKING_PROMPT, lang="en")
    crowd.review("chloe", parking, pii=1.0, quality=0.5)
    crowd.review("dieter", parking, pii=1.0, quality=0.5)
    crowd.review("mia", parking, quality=0.5)
    crowd.ensure_growing(parking)
    note = crowd.reply("chloe", parking, PARKING_NOTE)
    crowd.review_fully(note, ("dieter", "mia", "ben", "admin"), quality=0.75)
    trees.halt_tree(tree_id=parking.tree_id, moderator=crowd.users["mia"])

    # growing: two answers and a follow-up that still waits for reviews; ada (the demo
    # volunteer with the API key) has done nothing here, so every kind of task is open to her.
    compost = crowd.prompt("chloe", COMPOST_PROMPT, lang="en")
    crowd.review_fully(compost, ("ben", "dieter", "mia"), quality=1.0)
    crowd.ensure_growing(compost)
    worms = crowd.reply("ben", compost, COMPOST_WORMS)
    crowd.review_fully(worms, ("chloe", "dieter", "mia"), quality=1.0, helpfulness=1.0)
    follow_up = crowd.reply("chloe", worms, COMPOST_FOLLOW_UP)
    # One review of the follow-up now; the rest are for whoever logs in. While it waits it
    # cannot be answered, so the next answer can only go to the prompt.
    reviews = MessageTree.objects.get(pk=compost.tree_id).reviews_needed
    crowd.review_fully(follow_up, ("dieter",), count=min(1, reviews - 1))
    hot_bin = crowd.reply("dieter", compost, COMPOST_BIN)
    crowd.review_fully(hot_bin, ("ben", "chloe", "mia"), quality=0.5, helpfulness=0.5)

    # initial_prompt_review: a fresh prompt with one of its reviews.
    recursion = crowd.prompt("dieter", RECURSION_PROMPT, lang="en")
    crowd.review_fully(recursion, ("chloe",), count=min(1, reviews - 1), quality=0.75)

    # growing, in German.
    if "de" in settings.CHORUS_LANGUAGES:
        de_reviewers = ("chloe", "mia", "admin", "dieter", "ben")
        sky = crowd.prompt("dieter", SKY_PROMPT, lang="de")
        crowd.review_fully(sky, de_reviewers, quality=1.0)
        crowd.ensure_growing(sky)
        answer = crowd.reply("chloe", sky, SKY_ANSWER)
        crowd.review_fully(answer, ("dieter", "mia", "admin", "ben"), helpfulness=1.0)


def _import_trees(users: Mapping[str, User]) -> None:
    now = timezone.now()
    report = import_oasst(
        lines=[export_line(tree, users, now=now) for tree in IMPORTED_TREES], source="demo data"
    )
    if report.errors:
        raise DemoSeedError("the demo trees did not import: " + "; ".join(report.errors))


def _root(tree: DemoTree) -> Message:
    return Message.objects.get(pk=_message_id(tree, "0"))


def _replies(tree: DemoTree, *indexes: int) -> list[Message]:
    """The root's replies by their position in the handwritten tree."""
    return [Message.objects.get(pk=_message_id(tree, f"0.{i}")) for i in indexes]


def _rank_imported_trees(crowd: Crowd) -> None:
    """One tree at a time in `ranking`, so each rank task goes to the tree meant."""
    # ready_for_scoring and scoring_failed: ranked in full, then held (see `_hold_state`).
    chloe, ben, mia = _replies(HAIKU, 0, 1, 2)
    _rank_fully(
        crowd,
        HAIKU,
        [("ada", [chloe, ben, mia]), ("dieter", [ben, chloe, mia]), ("admin", [chloe, ben, mia])],
    )
    _hold_state(HAIKU, State.READY_FOR_SCORING)

    ben, dieter = _replies(GUITAR, 0, 1)
    _rank_fully(
        crowd,
        GUITAR,
        [("chloe", [ben, dieter]), ("mia", [ben, dieter]), ("admin", [dieter, ben])],
    )
    _hold_state(GUITAR, State.READY_FOR_SCORING)
    # Demo data: a real tree lands here only when the scoring job raises; this one shows
    # what a moderator sees then. The reconcile job retries it, and it would then succeed.
    _hold_state(GUITAR, State.SCORING_FAILED)

    # ranking: the tree rules promote a backlog tree while the language has ranking room;
    # one volunteer has ranked its replies, the others are open (ada may rank them).
    trees.advance_tree_by_id(tree_id=_root(PHOTOSYNTHESIS).tree_id)
    _expect_state(PHOTOSYNTHESIS, State.RANKING)
    ben, dieter, mia = _replies(PHOTOSYNTHESIS, 0, 1, 2)
    crowd.rank("chloe", _root(PHOTOSYNTHESIS), [mia, ben, dieter])


def _rank_fully(
    crowd: Crowd, tree: DemoTree, rankings: Sequence[tuple[str, Sequence[Message]]]
) -> None:
    """Rank the root's replies until the tree's target. All but the last ranking go through
    tasks; the last one would finish ranking and start the scoring job at once, so it is
    recorded with the same service, without a task, and the tree is left in ranking."""
    root = _root(tree)
    trees.advance_tree_by_id(tree_id=root.tree_id)
    _expect_state(tree, State.RANKING)
    needed = MessageTree.objects.get(pk=root.tree_id).rankings_needed
    if len(rankings) < needed:
        raise DemoSeedError(f"{tree.name} needs {needed} rankings, the demo has {len(rankings)}")
    *by_task, (last_ranker, last_order) = rankings[:needed]
    for ranker, order in by_task:
        crowd.rank(ranker, root, order)
    with transaction.atomic():
        trees.lock_tree(root.tree_id)
        trees.record_ranking(
            parent=root,
            user=crowd.users[last_ranker],
            ordered_ids=[m.id for m in last_order],
            not_rankable=False,
            task_id=None,  # type: ignore[arg-type]  # no task: see the docstring
        )


def _expect_state(tree: DemoTree, state: State) -> None:
    actual = MessageTree.objects.get(pk=_root(tree).tree_id).state
    if actual != state:
        raise DemoSeedError(f"the demo tree {tree.name} is {actual}, expected {state}")


@transaction.atomic
def _hold_state(tree: DemoTree, target: State) -> None:
    """Demo data only: move the tree as `services.set_state` would (history included) but
    without starting the scoring job, which would move it on at once. The tree rules must
    allow the step, and for ready_for_scoring they must also choose it from the tree's facts."""
    row = trees.lock_tree(_root(tree).tree_id)
    source = State(row.state)
    if not rules.is_legal_transition(source, target):
        raise DemoSeedError(f"{tree.name}: {source} -> {target} is not a legal transition")
    if target == State.READY_FOR_SCORING and rules.next_state(tree_facts(row)) != target:
        raise DemoSeedError(f"{tree.name}: the rules do not take it to {target} yet")
    row.state = target
    row.state_changed_at = timezone.now()
    row.save(update_fields=["state", "state_changed_at"])
    StateChange.objects.create(
        tree=row, source=source, target=target, created_at=row.state_changed_at
    )


# --- Users and the API key ------------------------------------------------------------------


def var_dir() -> Path:
    """Local, git-ignored files: CHORUS_VAR_DIR, else var/ in the project."""
    return Path(os.environ.get("CHORUS_VAR_DIR") or Path(settings.BASE_DIR) / "var")


def api_key_path() -> Path:
    return var_dir() / API_KEY_FILE


@transaction.atomic
def _create_users() -> tuple[dict[str, User], str]:
    users = {
        spec.username: create_user(
            username=spec.username,
            password=DEMO_PASSWORD,
            display_name=spec.display_name,
            languages=list(spec.languages),
            role=spec.role,
            accepted_terms_version=settings.CHORUS_TERMS_VERSION,
        )
        for spec in DEMO_USERS
    }
    # The demo logins are for trying Chorus out: they skip the newcomers' tutorial.
    User.objects.filter(pk__in=[u.pk for u in users.values()]).update(
        tutorial_completed_at=timezone.now()
    )
    _, key = create_api_client(owner=users[API_KEY_OWNER], name="demo key (seed_demo)")
    return users, key


def _save_key(key: str) -> str | None:
    """Keep a local copy of the key for later runs; returns a note if that failed."""
    path = api_key_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(key + "\n")
    except OSError as exc:
        return f"could not keep a copy in {path} ({exc.strerror or exc}): note it down now"
    return None


def _saved_key() -> tuple[str | None, str]:
    """The demo key from the local copy if it still works, else None and why not."""
    path = api_key_path()
    try:
        key = path.read_text().strip()
    except OSError:
        return None, (
            f"it was printed when the demo was created; only its hash is stored, and the "
            f"local copy {path} is gone"
        )
    parts = split_api_key(key)
    client = (
        ApiClient.objects.filter(key_prefix=parts[0], revoked_at=None).first() if parts else None
    )
    if (
        client is None
        or client.key_hash != hash_api_key(key)
        or client.owner.username != API_KEY_OWNER
    ):
        return None, f"the key in {path} is not a live key of {API_KEY_OWNER} in this database"
    return key, f"kept in {path}"


# --- The service ------------------------------------------------------------------------------


@dataclass
class DemoReport:
    # "seeded" now, "present" from an earlier run, or "skipped" (a database in use).
    outcome: str
    api_key: str | None = None
    api_key_note: str = ""
    skipped_reason: str = ""
    trees_by_state: dict[str, int] = field(default_factory=dict)


def _database_in_use() -> str:
    """Why this database is not a fresh one (empty when it is). Imported authors don't count."""
    others = User.objects.filter(is_imported=False).exclude(username__in=DEMO_USERNAMES)
    if others.exists():
        return f"it has {others.count()} user account(s) besides the demo users"
    if MessageTree.objects.exists():
        return f"it holds {MessageTree.objects.count()} conversation tree(s) already"
    return ""


def trees_by_state() -> dict[str, int]:
    rows = MessageTree.objects.values("state").annotate(n=Count("id")).order_by()
    counts = {row["state"]: row["n"] for row in rows}
    return {state.value: counts.get(state.value, 0) for state in State}


def seed_demo() -> DemoReport:
    """Create the demo users, key and trees in a fresh database; see the module docstring.

    Safe to call on every start: once the demo users exist it changes nothing. A database
    that has other accounts or trees is left alone (the report says why), so demo logins
    with a published password never land in a database in real use.
    """
    present = set(
        User.objects.filter(username__in=DEMO_USERNAMES).values_list("username", flat=True)
    )
    if present == set(DEMO_USERNAMES):
        key, note = _saved_key()
        return DemoReport("present", key, note, trees_by_state=trees_by_state())
    reason = _database_in_use() or (
        f"some demo user names are taken ({', '.join(sorted(present))})" if present else ""
    )
    if reason:
        return DemoReport("skipped", skipped_reason=reason, trees_by_state=trees_by_state())

    users, key = _create_users()
    note = _save_key(key) or f"kept in {api_key_path()}"
    crowd = Crowd(users)
    try:
        _grow_volunteer_trees(crowd)
        _import_trees(users)
        _rank_imported_trees(crowd)
    except ChorusError as exc:  # a service refused a step of the script
        raise DemoSeedError(f"{type(exc).__name__}: {exc.message}") from exc
    return DemoReport("seeded", key, note, trees_by_state=trees_by_state())


# --- The printout ---------------------------------------------------------------------------


def summary_lines(report: DemoReport, *, base_url: str) -> Iterator[str]:
    base_url = base_url.rstrip("/")
    if report.outcome == "skipped":
        yield f"Demo data: not added, because this database is in use: {report.skipped_reason}."
        yield "(seed_demo only fills a fresh database.)"
    else:
        yield "Demo data: " + (
            "created." if report.outcome == "seeded" else "already there, nothing changed."
        )
        yield ""
        yield f"  Chorus   {base_url}/"
        yield f"  Log in   {base_url}/accounts/login/  (e.g. ada / {DEMO_PASSWORD})"
        yield f"  API docs {base_url}/api/docs/"
        yield ""
        yield f"  Demo logins (local demo only; every password is {DEMO_PASSWORD!r}):"
        yield f"    {'username':<10}{'role':<11}{'languages':<11}password"
        for spec in DEMO_USERS:
            languages = ",".join(spec.languages)
            yield f"    {spec.username:<10}{spec.role:<11}{languages:<11}{DEMO_PASSWORD}"
        yield ""
        if report.api_key:
            yield f"  API key of {API_KEY_OWNER} ({report.api_key_note}):"
            yield f"    {report.api_key}"
            yield "  Try it:"
            yield (
                f'    curl -H "Authorization: Bearer {report.api_key}" '
                f'"{base_url}/api/v1/tasks/availability/?lang=en"'
            )
        else:
            yield f"  API key of {API_KEY_OWNER}: not shown ({report.api_key_note})."
    yield ""
    yield "  Trees by state:"
    for state, count in report.trees_by_state.items():
        yield f"    {state:<24}{count:>4}"
    yield f"    {'total':<24}{sum(report.trees_by_state.values()):>4}"
