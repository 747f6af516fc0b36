"""A version folder streamed as a tar: readable by tarfile, byte for byte, in bounded pieces."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from backend.exports import archive


def test_a_folder_streams_as_a_tar_of_every_file_in_pieces_no_larger_than_a_chunk(tmp_path: Path):
    (tmp_path / "sft").mkdir()
    big = os.urandom(2 * archive.CHUNK + 777)  # spans chunks, ends mid-block
    (tmp_path / "messages.parquet").write_bytes(big)
    (tmp_path / "sft" / "train.jsonl").write_text('{"messages": []}\n')
    (tmp_path / "empty.txt").write_bytes(b"")

    pieces = list(archive.stream_tar(tmp_path, prefix="v3"))

    assert max(len(piece) for piece in pieces) <= archive.CHUNK
    with tarfile.open(fileobj=io.BytesIO(b"".join(pieces))) as tar:
        assert sorted(tar.getnames()) == [
            "v3/empty.txt",
            "v3/messages.parquet",
            "v3/sft/train.jsonl",
        ]
        assert tar.extractfile("v3/messages.parquet").read() == big  # type: ignore[union-attr]
        assert tar.extractfile("v3/sft/train.jsonl").read() == b'{"messages": []}\n'  # type: ignore[union-attr]
