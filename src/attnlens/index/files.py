"""Reading and writing index files atomically, and the lock writers of one index folder take.

A save writes `<name>.tmp` next to the file, flushes it to disk, then renames it over the old file
(`os.replace` is atomic on POSIX and Windows). A reader therefore sees the old file or the new one,
never half of one; a crash mid-save leaves the old file intact and a stale `.tmp` the next save replaces.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np

from attnlens.errors import IndexDamaged, IndexMissing, StorageUnavailable

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

_CHUNK_BYTES = 16 << 20


def temporary_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def write_index_atomically(index: faiss.Index, path: Path) -> None:
    data = faiss.serialize_index(index)  # (bytes,) uint8
    write_bytes_atomically(data.data, path)  # the array's own memoryview (no copy)


def write_bytes_atomically(data: bytes | memoryview, path: Path) -> None:
    tmp = temporary_path(path)
    view = memoryview(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            for start in range(0, len(view), _CHUNK_BYTES):
                handle.write(view[start : start + _CHUNK_BYTES])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise StorageUnavailable(
            f"the index file {path} cannot be written ({exc.strerror or exc}); the previous one is intact. "
            "Free space on its disk or make the data dir writable; the next sync (or a restart) catches up "
            "from the database."
        ) from exc
    _fsync_directory(path.parent)


class _FolderLock:
    def __init__(self) -> None:
        self.threads = threading.RLock()
        self.depth = 0
        self.handle: BinaryIO | None = None


_FOLDER_LOCKS: dict[Path, _FolderLock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Held by whoever changes the index files of `folder` (a build's job thread, pasted code, the CLI),
    in this process or another: a re-entrant thread lock plus an exclusive `flock` on `folder/.lock`,
    which the kernel releases if the holder dies. Readers take no lock; they see whole files (see above).
    Without `fcntl` (Windows) only threads of one process are kept apart."""
    folder.mkdir(parents=True, exist_ok=True)
    with _FOLDER_LOCKS_GUARD:
        lock = _FOLDER_LOCKS.setdefault(folder.resolve(), _FolderLock())
    with lock.threads:
        if lock.depth == 0:
            lock.handle = open(folder / ".lock", "a+b")  # noqa: SIM115 - held across the with block
            if fcntl is not None:
                fcntl.flock(lock.handle.fileno(), fcntl.LOCK_EX)
        lock.depth += 1
        try:
            yield
        finally:
            lock.depth -= 1
            if lock.depth == 0 and lock.handle is not None:
                if fcntl is not None:
                    fcntl.flock(lock.handle.fileno(), fcntl.LOCK_UN)
                lock.handle.close()
                lock.handle = None


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
        raise IndexMissing(
            f"no index at {path}; restart the app or run `attnlens index rebuild` (both rebuild it from the "
            "database)."
        )
    data = np.fromfile(path, dtype=np.uint8)
    try:
        return faiss.deserialize_index(data)
    except RuntimeError as exc:
        raise IndexDamaged(
            f"the index file {path} is unreadable ({str(exc).splitlines()[0][:200]}); restart the app or run "
            "`attnlens index rebuild` (both rebuild it from the database)."
        ) from exc
