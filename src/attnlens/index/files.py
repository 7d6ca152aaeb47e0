"""Reading and writing FAISS index files atomically.

A save writes `<name>.tmp` next to the index, flushes it to disk, then renames it over the old file
(`os.replace` is atomic on POSIX and Windows). A reader therefore sees the old index or the new one,
never half of one; a crash mid-save leaves the old file intact and a stale `.tmp` the next save replaces.
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from attnlens.errors import IndexMissing, StoreError

_CHUNK_BYTES = 16 << 20


def temporary_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def write_index_atomically(index: faiss.Index, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = faiss.serialize_index(index)  # (bytes,) uint8
    tmp = temporary_path(path)
    with open(tmp, "wb") as handle:
        view = data.data  # the array's own memoryview (no copy)
        for start in range(0, len(view), _CHUNK_BYTES):
            handle.write(view[start : start + _CHUNK_BYTES])
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_index(path: Path) -> faiss.Index:
    if not path.is_file():
        raise IndexMissing(f"no index at {path}; build it with `attnlens index rebuild`.")
    data = np.fromfile(path, dtype=np.uint8)
    try:
        return faiss.deserialize_index(data)
    except RuntimeError as exc:
        raise StoreError(
            f"the index file {path} is unreadable ({str(exc).splitlines()[0][:200]}); "
            "rebuild it from the database with `attnlens index rebuild`."
        ) from exc
