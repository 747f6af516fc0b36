"""The Redis path: jobs sent by this process are run by a real Celery worker process that
works on the test database. Needs REDIS_URL (CI sets it; CHORUS_REQUIRE_SERVICES makes a
skip fail there)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from celery.result import EagerResult
from django.db import connection

from backend.trees import services
from backend.trees.models import Message, MessageTree, Ranking
from backend.trees.rules import State
from tests.conftest import PROJECT_ROOT
from tests.factories import MessageFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CLAIM_KEY = "chorus-test:worker-db-claim"
WAIT_SECONDS = 60


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def broker_url(redis_url: str) -> Iterator[str]:
    """A Redis database (1-15) this test claims for itself, so parallel runs never share
    a queue: a worker of another run would work on the wrong test database."""
    import redis

    parts = urlsplit(redis_url)
    token = uuid.uuid4().hex
    for db in random.sample(range(1, 16), 15):
        url = urlunsplit(parts._replace(path=f"/{db}"))
        client = redis.Redis.from_url(url)
        if client.set(CLAIM_KEY, token, nx=True, ex=600):
            break
        client.close()
    else:
        pytest.fail("every Redis database 1-15 is claimed by another test run")
    client.delete("celery")  # messages a crashed earlier run may have left behind
    try:
        yield url
    finally:
        client.delete("celery")
        if client.get(CLAIM_KEY) == token.encode():
            client.delete(CLAIM_KEY)
        client.close()


def database_url_for_worker() -> str:
    """A URL for the database this test runs on (pytest-django's test database)."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = db.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    name = quote(db["NAME"], safe="")
    host, port = db.get("HOST") or "", str(db.get("PORT") or "")
    if host and not host.startswith("/"):
        return f"postgres://{auth}@{host}{':' + port if port else ''}/{name}"
    # A Unix socket folder: in HOST, or (the embedded server) in OPTIONS["host"].
    socket_dir = host or db.get("OPTIONS", {}).get("host", "")
    query = f"host={quote(socket_dir, safe='/')}" + (f"&port={port}" if port else "")
    return f"postgres://{auth}@/{name}?{query}"


@pytest.fixture
def producer(broker_url: str) -> Iterator[None]:
    """Make `.delay()` in this process publish to the worker's broker instead of running
    the job eagerly; restore the app's configuration afterwards."""
    from backend.celery import app

    before = (app.conf.broker_url, app.conf.task_always_eager)
    reset_broker_pools(app)
    app.conf.broker_url = broker_url
    app.conf.task_always_eager = False
    try:
        yield
    finally:
        reset_broker_pools(app)
        app.conf.broker_url, app.conf.task_always_eager = before


def reset_broker_pools(app) -> None:  # type: ignore[no-untyped-def]
    """Close and forget pooled broker connections. kombu keeps them process-wide per URL
    and the app caches its own: both would outlive the URL this test gave the app."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def worker(broker_url: str, producer: None) -> Iterator[Callable[[], str]]:
    """A Celery worker process on the claimed broker and the test database.

    Yields a function returning the worker's log so far (for failure messages)."""
    yield from _worker(broker_url, "--pool=solo")


@pytest.fixture
def prefork_worker(broker_url: str, producer: None) -> Iterator[Callable[[], str]]:
    """The same with one pool process, as production runs workers."""
    yield from _worker(broker_url, "--pool=prefork")


def _worker(broker_url: str, pool: str) -> Iterator[Callable[[], str]]:
    env = {
        **os.environ,
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DATABASE_URL": database_url_for_worker(),
    }
    env.pop("DATABASE_TEST_NAME", None)
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        *(sys.executable, "-m", "celery", "-A", "backend", "worker"),
        *(pool, "--concurrency=1", "-l", "warning", "--without-gossip"),
        *("--without-mingle", "--without-heartbeat", "-n", f"test-{uuid.uuid4().hex[:8]}@%h"),
    ]
    process = subprocess.Popen(  # noqa: S603  # our own interpreter, fixed arguments
        command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )

    def output() -> str:
        log.flush()
        text = Path(log.name).read_text(errors="replace")
        status = "running" if process.poll() is None else f"exited with {process.returncode}"
        return f"celery worker ({status}) said:\n{text}"

    try:
        yield output
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        Path(log.name).unlink(missing_ok=True)


def wait_for(done: Callable[[], bool], worker_log: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if done():
            return
        if "exited with" in worker_log().splitlines()[0]:
            break
        time.sleep(0.25)
    pytest.fail(f"the worker did not get there in {WAIT_SECONDS} s.\n{worker_log()}")


def state_of(tree_id: uuid.UUID) -> State:
    return State(MessageTree.objects.get(pk=tree_id).state)


def make_tree(*, state: State, **limits: object) -> Message:
    tree = MessageTree.objects.create(
        state=state, lang="en", **{**services.tree_limits(), **limits}
    )
    return MessageFactory(tree=tree, review_result=True, review_count=tree.reviews_needed)


def ranked_replies(root: Message, count: int = 2) -> list[Message]:
    """`count` accepted replies under `root`, ranked (last first) as often as needed."""
    replies = [
        MessageFactory(
            tree=root.tree, parent=root, role="assistant", review_result=True, review_count=3
        )
        for _ in range(count)
    ]
    for _ in range(root.tree.rankings_needed):
        Ranking.objects.create(
            parent=root, user=UserFactory(), ordered_ids=[m.id for m in reversed(replies)]
        )
    Message.objects.filter(pk=root.pk).update(
        children_count=count,
        accepted_children_count=count,
        ranking_count=root.tree.rankings_needed,
    )
    return replies


def test_a_stalled_tree_is_moved_by_the_reconcile_job(worker):
    from backend.trees.jobs import reconcile_trees_job

    # Rankings are all in, but the event that should have moved the tree was lost.
    stalled = make_tree(state=State.RANKING, rankings_needed=1)
    replies = ranked_replies(stalled)
    waiting = make_tree(state=State.PROMPT_LOTTERY_WAITING)

    reconcile_trees_job.delay()

    # The worker's reconcile moves it to ready_for_scoring and sends score_tree_job on
    # commit, through Redis again, which the same worker then runs.
    wait_for(lambda: state_of(stalled.tree_id) == State.READY_FOR_EXPORT, worker)
    assert state_of(waiting.tree_id) == State.GROWING
    ranks = {m.id: m.rank for m in Message.objects.filter(parent=stalled)}
    assert ranks == {replies[1].id: 0, replies[0].id: 1}


def test_the_score_job_sent_through_redis_scores_the_tree(worker):
    from backend.trees.jobs import score_tree_job

    root = make_tree(state=State.READY_FOR_SCORING, rankings_needed=2)
    replies = ranked_replies(root, count=3)

    result = score_tree_job.delay(str(root.tree_id))

    assert not isinstance(result, EagerResult)  # published to Redis, not run here
    wait_for(lambda: state_of(root.tree_id) == State.READY_FOR_EXPORT, worker)
    scored = {m.id: m for m in Message.objects.filter(parent=root)}
    assert [scored[m.id].rank for m in reversed(replies)] == [0, 1, 2]
    assert all(m.consensus_strength is not None for m in scored.values())
    assert Message.objects.get(pk=root.pk).replies_agreement == pytest.approx(1.0)


def worker_connections() -> dict[int, str]:
    """The worker's connections to this test database: pid, the last statement run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return dict(cursor.fetchall())


def test_a_pool_process_keeps_its_database_connection_from_job_to_job(prefork_worker):
    # Celery's Django fix-up would close Django's connection pool after every job in a
    # pool process (celery/celery#10554): each job would open a new pool and connection.
    from backend.trees.jobs import score_tree_job

    seen = []
    for _ in range(2):
        root = make_tree(state=State.READY_FOR_SCORING, rankings_needed=2)
        ranked_replies(root)
        score_tree_job.delay(str(root.tree_id))
        wait_for(lambda root=root: state_of(root.tree_id) == State.READY_FOR_EXPORT, prefork_worker)
        time.sleep(0.5)  # the job's end: its connection goes back to the pool
        seen.append(worker_connections())

    # The connection that ran the first job (its last statement the job's COMMIT) is still
    # open after the second: closed, it would be gone, and the second job would have opened
    # another.
    ran_first_job = {pid for pid, query in seen[0].items() if query == "COMMIT"}
    assert ran_first_job, seen
    assert ran_first_job <= seen[1].keys(), seen
