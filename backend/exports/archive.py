"""A version folder as a tar stream, in constant memory (no Django here).

tarfile's own writer copies each whole file into the output before a caller can hand any
of it on, so a generator around it would hold a multi-gigabyte Parquet file in memory. The
format is simple enough to write piece by piece: per file a header block (tarfile builds
it), the bytes in chunks, zero padding to the next 512-byte block; two zero blocks end it.
The files are already compressed (gzip, Parquet), so the tar is not.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

BLOCK = 512
CHUNK = 1 << 20


def version_files(folder: Path) -> list[Path]:
    """The folder's files, in a stable order."""
    return sorted(path for path in folder.rglob("*") if path.is_file())


def stream_tar(folder: Path, *, prefix: str) -> Iterator[bytes]:
    """Every file of `folder` under `prefix/` in the archive, CHUNK bytes at a time."""
    for path in version_files(folder):
        info = tarfile.TarInfo(name=f"{prefix}/{path.relative_to(folder).as_posix()}")
        stat = path.stat()
        info.size = stat.st_size
        info.mtime = int(stat.st_mtime)
        info.mode = 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        written = 0
        with path.open("rb") as file:
            while chunk := file.read(CHUNK):
                written += len(chunk)
                yield chunk
        if written != info.size:
            raise OSError(f"{path} changed size while it was archived")
        if remainder := info.size % BLOCK:
            yield b"\0" * (BLOCK - remainder)
    yield b"\0" * (2 * BLOCK)
