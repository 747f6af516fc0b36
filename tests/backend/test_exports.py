"""Dataset exports against the database: the version folder, the round trip through the
importer, reproducibility, every filter, failure, `datasets` loading and the command."""

from __future__ import annotations

import gc
import gzip
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from backend.core.errors import Conflict, InvalidInput
from backend.exports import services
from backend.exports.models import DatasetExport, ExportStatus
from backend.exports.writer import DatasetWriter
from backend.trees.importing import import_oasst
from backend.trees.models import Message, MessageTree
from backend.trees.rules import State
from tests.factories import MessageFactory, TreeFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
# The sample file calls every tree ready_for_export, but one has an unranked reply set and
# is imported as backlog_ranking: asking for both states exports all 100.
SAMPLE_STATES = ["ready_for_export", "backlog_ranking"]
DATA_FILES = ("trees.jsonl.gz", "messages.parquet", "messages", "sft", "preference")


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path) -> Path:
    settings.CHORUS_EXPORT_DIR = str(tmp_path / "exports")
    # Every factory message brings its author, whose password the default hasher would
    # take a fifth of a second to hash; these tests are about exports, not passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return tmp_path / "exports"


def export(filters: dict[str, Any] | None = None, *, seed: int = 1, salt: str = "salt"):
    planned = services.create_export(user=None, filters=filters or {}, seed=seed)
    return services.run_export(export_id=planned.id, salt=salt)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def rows_of(folder: Path, config: str) -> list[dict[str, Any]]:
    """Every row of a config, all splits together."""
    return [row for path in sorted((folder / config).glob("*.jsonl*")) for row in read_jsonl(path)]


def nodes(tree: dict[str, Any]) -> list[dict[str, Any]]:
    found, stack = [], [tree["prompt"]]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.get("replies", []))
    return found


def exported_texts(folder: Path) -> set[str]:
    return {node["text"] for tree in read_jsonl(folder / "trees.jsonl.gz") for node in nodes(tree)}


def import_sample(path: Path) -> None:
    with path.open("rb") as lines:
        report = import_oasst(lines=lines)
    assert report.errors == []


def data_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for name in DATA_FILES
        for path in ([folder / name] if (folder / name).is_file() else (folder / name).rglob("*"))
    }


def conversation(*, state: str = State.READY_FOR_EXPORT, lang: str = "en") -> dict[str, Message]:
    """prompt -> {best (rank 0) -> follow-up -> answer, other (rank 1)}, all accepted."""
    tree = TreeFactory(state=state, lang=lang)

    def message(parent: Message | None, role: str, minute: int, **fields: Any) -> Message:
        return MessageFactory(
            tree=tree,
            parent=parent,
            role=role,
            lang=lang,
            review_result=True,
            review_count=3,
            created_at=T0 + timedelta(minutes=minute),
            text=f"{role} {minute} of {tree.id}",
            **fields,
        )

    prompt = message(None, "prompter", 0, replies_agreement=0.8)
    best = message(prompt, "assistant", 1, rank=0, consensus_strength=0.7)
    other = message(prompt, "assistant", 2, rank=1, consensus_strength=0.3)
    follow_up = message(best, "prompter", 3)
    answer = message(follow_up, "assistant", 4)
    return {
        "prompt": prompt,
        "best": best,
        "other": other,
        "follow_up": follow_up,
        "answer": answer,
    }


# --- the folder ---------------------------------------------------------------------------


def test_an_export_publishes_a_version_folder_with_every_file_and_a_done_record(export_dir):
    tree = conversation()
    creator = UserFactory()
    planned = services.create_export(user=creator, filters={"validation": 0}, seed=4)

    done = services.run_export(export_id=planned.id, salt="s")

    folder = export_dir / "v1"
    assert (done.status, done.version, done.path, done.progress) == (
        ExportStatus.DONE,
        1,
        str(folder),
        1.0,
    )
    assert done.created_by == creator
    assert (done.stats["trees"], done.stats["messages"]) == (1, 5)
    assert sorted(p.name for p in export_dir.iterdir()) == ["v1"]
    for name in ("README.md", "export.json", "trees.jsonl.gz", "messages.parquet"):
        assert (folder / name).is_file()
    manifest = json.loads((folder / "export.json").read_text())
    assert (manifest["seed"], manifest["version"]) == (4, 1)
    assert manifest["files"]["sft/train.jsonl"] == 1
    assert manifest["files"]["preference/train.jsonl"] == 1
    assert "salt" not in (folder / "export.json").read_text()
    (pair,) = read_jsonl(folder / "preference" / "train.jsonl")
    assert pair["chosen"][0]["content"] == tree["best"].text
    assert pair["margin"] == pytest.approx(0.4)
    (sft,) = read_jsonl(folder / "sft" / "train.jsonl")
    assert [t["content"] for t in sft["messages"]] == [
        tree[k].text for k in ("prompt", "best", "follow_up", "answer")
    ]
    assert pq.read_table(folder / "messages.parquet").num_rows == 5


def test_versions_count_up_reuse_the_seed_and_the_card_tells_what_changed(export_dir):
    first = conversation()
    export(seed=11)
    services.take_down_message(message_id=first["best"].id, reason="personal data")
    services.take_down_message(message_id=first["best"].id, reason="asked twice")

    planned = services.create_export(user=None, filters={})
    second = services.run_export(export_id=planned.id)

    assert (second.version, second.seed) == (2, 11)
    assert second.stats["takedowns_since_previous"] == 1
    card = (export_dir / "v2" / "README.md").read_text()
    assert "## Changes since v1" in card
    assert "| messages | 5 | 2 |" in card
    assert "Messages taken down since v1: 1" in card


def test_a_running_or_failed_export_cannot_run_again_and_a_done_one_is_returned_as_it_is():
    done = export()
    assert services.run_export(export_id=done.id).version == done.version

    DatasetExport.objects.filter(pk=done.pk).update(status=ExportStatus.FAILED, version=None)
    with pytest.raises(Conflict):
        services.run_export(export_id=done.id)


def test_start_export_queues_the_run_which_publishes_the_version(
    django_capture_on_commit_callbacks,
):
    conversation()

    with django_capture_on_commit_callbacks(execute=True):
        planned = services.start_export(user=None, filters={"validation": 0})

    planned.refresh_from_db()
    assert (planned.status, planned.version) == (ExportStatus.DONE, 1)


@pytest.mark.django_db(transaction=True)
def test_an_export_in_autocommit_mode_streams_as_in_production(export_dir):
    # Outside a transaction Django declares the server-side cursor WITH HOLD; the other
    # tests run inside one, where it is a plain cursor.
    for _ in range(3):
        conversation()

    done = export({"validation": 0})

    assert (done.status, done.stats["trees"], done.stats["messages"]) == ("done", 3, 15)


# Texts that a CSV-like stream could mangle: quotes, separators, escapes, line breaks,
# the stream's own delimiter (\x1f) and quote (\x1e) characters, and non-ASCII.
AWKWARD_TEXTS = [
    "She said \"no\", then left; 'twice'.",
    "Line one\nline two\r\nand a tab\there, a backslash \\ and \\N at the end\\",
    "Unit \x1f separator and record \x1e separator, inside the text",
    "Ümlaute, 漢字, emoji 🎉 and a zero-width\u200bjoiner",
    '{"looks": ["like", "json"], "n": 1.0}',
]


@pytest.mark.django_db(transaction=True)
def test_the_copy_stream_gives_the_same_bytes_as_the_cursor_inside_a_transaction(export_dir):
    # Outside a transaction the trees come by COPY on a connection of their own; inside one
    # (a caller's atomic block, and every other test here) from a server-side cursor.
    for text in AWKWARD_TEXTS:
        best = conversation()["best"]
        Message.objects.filter(pk=best.pk).update(text=text)

    streamed = export({"validation": 0})
    with transaction.atomic():
        from_cursor = export({"validation": 0})

    files = data_bytes(Path(streamed.path))
    assert files == data_bytes(Path(from_cursor.path))
    exported = exported_texts(Path(streamed.path))
    assert all(text in exported for text in AWKWARD_TEXTS)


def test_bad_options_are_refused_before_anything_is_created():
    with pytest.raises(InvalidInput):
        services.create_export(user=None, filters={"branch_policy": "longest"})
    assert not DatasetExport.objects.exists()


def test_an_export_in_languages_no_tree_is_in_is_refused_naming_them():
    conversation(lang="en")
    TreeFactory(state=State.GROWING, lang="pt-BR")  # any state will do: the filter may add it

    with pytest.raises(InvalidInput) as caught:
        services.create_export(user=None, filters={"langs": ["en", "zz", "pt-BR", "yy"]})

    assert caught.value.fields == {"langs": ["no tree is in these languages: yy, zz"]}
    assert not DatasetExport.objects.exists()
    assert services.create_export(user=None, filters={"langs": ["en", "pt-BR"]}).filters[
        "langs"
    ] == ["en", "pt-BR"]


def test_the_command_refuses_a_language_no_tree_is_in():
    conversation(lang="en")

    with pytest.raises(CommandError, match="langs: no tree is in these languages: zz"):
        call_command("export_dataset", "--lang", "en", "zz")
    assert not DatasetExport.objects.exists()


# --- the round trip -----------------------------------------------------------------------


def _comparable(node: dict[str, Any]) -> tuple:
    return (
        node.get("parent_id"),
        node["text"],
        node["role"],
        node["lang"],
        node["review_count"],
        node["review_result"],
        node["deleted"],
        node.get("rank"),
        node["synthetic"],
        node.get("model_name"),
        node.get("emojis") or {},
        node.get("labels") or {},
    )


def test_the_real_sample_survives_export_import_export_unchanged(oasst_sample_path, export_dir):
    import_sample(oasst_sample_path)
    filters = {"states": SAMPLE_STATES, "validation": 0.2}

    first = export(filters, seed=3, salt="pepper")

    source = {
        json.loads(line)["message_tree_id"]: json.loads(line) for line in oasst_sample_path.open()
    }
    exported = {t["message_tree_id"]: t for t in read_jsonl(export_dir / "v1" / "trees.jsonl.gz")}
    assert exported.keys() == source.keys()
    assert list(exported) == sorted(exported, key=uuid.UUID)
    for tree_id, tree in exported.items():
        expected = {n["message_id"]: _comparable(n) for n in nodes(source[tree_id])}
        assert {n["message_id"]: _comparable(n) for n in nodes(tree)} == expected
    assert (first.stats["messages"], first.stats["ranked_messages"]) == (1167, 641)

    MessageTree.objects.all().delete()
    with gzip.open(export_dir / "v1" / "trees.jsonl.gz") as lines:
        assert import_oasst(lines=lines).errors == []
    export(filters, seed=3, salt="pepper")

    assert data_bytes(export_dir / "v2") == data_bytes(export_dir / "v1")


def test_labels_emojis_and_extra_fields_come_back_under_their_own_keys(export_dir):
    author = str(uuid.uuid4())
    answer = {
        "message_id": str(uuid.uuid4()),
        "user_id": author,
        "text": "Chlorophyll catches the light.",
        "role": "assistant",
        "lang": "en",
        "review_count": 3,
        "review_result": True,
        "deleted": False,
        "rank": 0,
        "synthetic": False,
        "emojis": {"+1": 4, "red_flag": 1},
        "labels": {"spam": {"value": 0.0, "count": 3}, "quality": {"value": 0.75, "count": 3}},
        "detoxify": {"toxicity": 0.0012},
        "replies": [],
    }
    prompt = {
        **answer,
        "message_id": str(uuid.uuid4()),
        "text": "What does chlorophyll do?",
        "role": "prompter",
        "rank": None,
        "events": {"pred_reply": [{"ts": 1}]},
        "replies": [answer],
    }
    line = {"message_tree_id": prompt["message_id"], "tree_state": "ready_for_export"}
    assert import_oasst(lines=[json.dumps({**line, "prompt": prompt, "origin": "o"})]).errors == []

    export({"validation": 0})

    (tree,) = read_jsonl(export_dir / "v1" / "trees.jsonl.gz")
    assert tree["origin"] == "o"
    exported = {n["message_id"]: n for n in nodes(tree)}
    for source in (prompt, answer):
        node = exported[source["message_id"]]
        for key in ("emojis", "labels", "detoxify", "events", "rank"):
            assert node.get(key) == source.get(key)
    user_ids = {n["user_id"] for n in exported.values()}
    assert len(user_ids) == 1
    assert author not in user_ids


def test_a_stray_version_folder_on_disk_is_never_overwritten(export_dir):
    (export_dir / "v1").mkdir(parents=True)
    (export_dir / "v1" / "keep.txt").write_text("someone else's")

    done = export()

    assert done.version == 2
    assert (export_dir / "v1" / "keep.txt").read_text() == "someone else's"


# --- reproducibility --------------------------------------------------------------------


def test_the_same_seed_and_salt_give_the_same_bytes_and_another_salt_changes_only_user_ids(
    export_dir,
):
    for _ in range(3):
        conversation()
    filters = {"validation": 0.5}

    export(filters, seed=9, salt="a")
    export(filters, seed=9, salt="a")
    export(filters, seed=9, salt="b")

    v1, v2, v3 = (export_dir / f"v{n}" for n in (1, 2, 3))
    assert data_bytes(v1) == data_bytes(v2)
    trees_a, trees_b = read_jsonl(v1 / "trees.jsonl.gz"), read_jsonl(v3 / "trees.jsonl.gz")
    ids_a = [n.pop("user_id") for t in trees_a for n in nodes(t)]
    ids_b = [n.pop("user_id") for t in trees_b for n in nodes(t)]
    assert trees_a == trees_b
    assert all(ids_a)
    assert not set(ids_a) & set(ids_b)
    assert len(set(ids_a)) == len(set(ids_b))
    assert rows_of(v1, "sft") == rows_of(v3, "sft")
    assert rows_of(v1, "preference") == rows_of(v3, "preference")


def test_user_ids_are_never_the_accounts_ids(export_dir):
    tree = conversation()

    export()

    published = {
        n["user_id"] for t in read_jsonl(export_dir / "v1" / "trees.jsonl.gz") for n in nodes(t)
    }
    accounts = {str(m.author_id) for m in tree.values()}
    assert published
    assert not published & accounts


# --- filters ------------------------------------------------------------------------------


def _set(message: Message, **fields: Any) -> None:
    Message.objects.filter(pk=message.pk).update(**fields)


@pytest.mark.parametrize(
    ("change", "filters"),
    [
        pytest.param({"deleted": True}, {}, id="deleted"),
        pytest.param({"review_result": False}, {}, id="rejected"),
        pytest.param({"review_result": None}, {}, id="pending-review"),
        pytest.param({"synthetic": True}, {"include_synthetic": False}, id="synthetic"),
        pytest.param(
            {"label_summary": {"spam": {"value": 0.75, "count": 4}}},
            {"max_labels": {"spam": 0.5}},
            id="label-threshold",
        ),
        pytest.param(
            {"created_at": T0 + timedelta(days=40)}, {"until": "2024-03-31"}, id="until-date"
        ),
    ],
)
def test_a_message_failing_a_filter_is_left_out_with_its_replies(export_dir, change, filters):
    tree = conversation()
    _set(tree["best"], **change)

    done = export({"validation": 0, **filters})

    texts = exported_texts(export_dir / "v1")
    assert texts == {tree["prompt"].text, tree["other"].text}
    assert sum(done.stats["excluded"].values()) == 3
    assert rows_of(export_dir / "v1", "preference") == []


def test_without_those_filters_the_same_messages_are_exported(export_dir):
    tree = conversation()
    _set(tree["best"], deleted=True, review_result=None, synthetic=True)

    export({"validation": 0, "include_deleted": True, "review": "any"})

    assert exported_texts(export_dir / "v1") == {m.text for m in tree.values()}


def test_messages_before_since_take_their_tree_along(export_dir):
    conversation()  # created on T0, before since
    new = conversation()
    for message in new.values():
        _set(message, created_at=message.created_at + timedelta(days=30))

    export({"since": "2024-03-15"})

    assert exported_texts(export_dir / "v1") == {m.text for m in new.values()}


def test_tree_states_and_languages_choose_whole_trees(export_dir):
    finished, growing = conversation(), conversation(state=State.GROWING)
    german = conversation(lang="de")

    export({"langs": ["en"]})
    export({"states": ["growing", "ready_for_export"], "langs": ["de", "en"]})

    assert exported_texts(export_dir / "v1") == {m.text for m in finished.values()}
    assert exported_texts(export_dir / "v2") == {
        m.text for t in (finished, growing, german) for m in t.values()
    }


def test_messages_of_people_who_withdrew_consent_leave_with_their_replies(export_dir):
    tree = conversation()
    author = tree["follow_up"].author
    author.data_consent_withdrawn_at = timezone.now()
    author.save()

    done = export()

    assert exported_texts(export_dir / "v1") == {tree[k].text for k in ("prompt", "best", "other")}
    assert done.stats["excluded"] == {"consent_withdrawn": 2}


def test_a_takedown_removes_the_message_and_its_replies_from_every_later_version(export_dir):
    tree = conversation()
    export()
    services.take_down_message(message_id=tree["follow_up"].id, reason="legal request")

    export()
    export()

    assert tree["answer"].text in exported_texts(export_dir / "v1")
    for version in ("v2", "v3"):
        assert exported_texts(export_dir / version) == {
            tree[k].text for k in ("prompt", "best", "other")
        }


def test_a_sibling_set_below_the_minimum_agreement_gives_no_preference_pairs(export_dir):
    tree = conversation()

    export({"validation": 0, "min_agreement": 0.9})
    _set(tree["prompt"], replies_agreement=0.95)
    export({"validation": 0, "min_agreement": 0.9})

    assert rows_of(export_dir / "v1", "preference") == []
    assert len(rows_of(export_dir / "v2", "preference")) == 1
    assert exported_texts(export_dir / "v1") == exported_texts(export_dir / "v2")


# --- failure ------------------------------------------------------------------------------


def test_an_export_failing_midway_leaves_no_version_folder_and_is_marked_failed(
    export_dir, monkeypatch
):
    for _ in range(3):
        conversation()
    original = DatasetWriter.write
    calls = []

    def write_then_fail(self: DatasetWriter, tree: Any) -> None:
        calls.append(tree)
        if len(calls) == 2:
            raise OSError("disk full")
        original(self, tree)

    monkeypatch.setattr(DatasetWriter, "write", write_then_fail)
    planned = services.create_export(user=None, filters={}, seed=1)

    with pytest.raises(OSError, match="disk full"):
        services.run_export(export_id=planned.id)

    planned.refresh_from_db()
    assert (planned.status, planned.version) == (ExportStatus.FAILED, None)
    assert "disk full" in planned.error
    assert list(export_dir.iterdir()) == []
    monkeypatch.setattr(DatasetWriter, "write", original)
    assert export().version == 1


@pytest.mark.django_db(transaction=True)
def test_an_export_failing_midway_in_autocommit_mode_stops_its_stream(export_dir, monkeypatch):
    # Outside a transaction the trees come by COPY on a connection of the stream's own, read
    # on a thread: a failure must stop both, and the next export must run as ever.
    for _ in range(3):
        conversation()
    original = DatasetWriter.write

    def fail(self: DatasetWriter, tree: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(DatasetWriter, "write", fail)
    planned = services.create_export(user=None, filters={}, seed=1)

    with pytest.raises(OSError, match="disk full"):
        services.run_export(export_id=planned.id)

    assert not [t for t in threading.enumerate() if t.name == "export stream"]
    assert gc.isenabled()
    monkeypatch.setattr(DatasetWriter, "write", original)
    assert export({"validation": 0}).stats["messages"] == 15


# --- datasets --------------------------------------------------------------------------------


def test_datasets_loads_every_config_of_the_folder(
    oasst_sample_path, export_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    import datasets

    # The variables above count only where datasets is imported first; this holds anyway.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    import_sample(oasst_sample_path)
    export({"states": SAMPLE_STATES, "validation": 0.2})
    folder = str(export_dir / "v1")
    files = json.loads((export_dir / "v1" / "export.json").read_text())["files"]

    def load(config: str, split: str) -> Any:
        return datasets.load_dataset(folder, config, split=split, cache_dir=str(tmp_path / "cache"))

    sft = load("sft", "train")
    assert sft.column_names == ["messages"]
    assert sft.num_rows == files["sft/train.jsonl"]
    preference = load("preference", "validation")
    assert sorted(preference.column_names) == ["chosen", "margin", "prompt", "rejected"]
    assert preference.num_rows == files["preference/validation.jsonl"]
    messages = load("messages", "train")
    assert {"message_id", "parent_id", "text", "role", "labels", "split"} <= set(
        messages.column_names
    )
    assert messages.num_rows == files["messages/train.jsonl.gz"]
    assert load("trees", "full").num_rows == 100


# --- the command ---------------------------------------------------------------------------


def test_the_command_writes_a_version_and_prints_its_folder_and_figures(export_dir):
    tree = conversation()
    _set(tree["other"], label_summary={"spam": {"value": 0.9, "count": 3}})
    out = StringIO()

    call_command(
        "export_dataset",
        "--seed", "5", "--salt", "x", "--validation", "0", "--max-label", "spam=0.5",
        "--branch-policy", "all", "--lang", "en", "--state", "ready_for_export",
        stdout=out,
    )  # fmt: skip

    printed = out.getvalue()
    assert str(export_dir / "v1") in printed
    assert "1 trees, 4 messages" in printed
    assert "label:spam 1" in printed
    done = DatasetExport.objects.get()
    assert done.filters["max_labels"] == {"spam": 0.5}
    assert done.filters["branch_policy"] == "all"


def test_the_command_refuses_bad_options_with_a_readable_error():
    with pytest.raises(CommandError, match="max_labels"):
        call_command("export_dataset", "--max-label", "spam=0.5", "nonsense=1")
    with pytest.raises(CommandError, match="NAME=NUMBER"):
        call_command("export_dataset", "--max-label", "spam")
