"""Tape maintenance that must never leave a half-written tape behind.

Every operation that rewrites a tape writes a scratch copy beside it and swaps it in with
one atomic rename on the same file system; a crash midway leaves the old tape untouched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import sqlite3
import uuid
from pathlib import Path
from types import TracebackType

from .._errors import TapeError

__all__ = ["Rewrite", "copy_tape", "leftover_recordings", "remove_leftovers", "remove_tape"]


def copy_tape(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """A consistent copy of a tape, with anything still in its write-ahead log folded in."""
    try:
        with (
            contextlib.closing(sqlite3.connect(source)) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
    except sqlite3.Error as exc:
        raise TapeError(f"{source}: cannot copy the tape ({exc})") from None


def remove_tape(path: str | os.PathLike[str]) -> None:
    """Delete a tape and its write-ahead log and shared-memory files, if present."""
    path = Path(path)
    path.unlink(missing_ok=True)
    _remove_sidecars(path)


def _remove_sidecars(path: Path) -> None:
    # A stale write-ahead log beside a swapped-in tape would be replayed into it.
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def leftover_recordings(path: str | os.PathLike[str]) -> list[Path]:
    """Scratch copies beside the tape at ``path`` whose writing process is gone: a run killed
    before it could swap its recording in or drop it.

    A scratch is named for the process writing it; one whose process still runs (another
    pytest worker recording the same tape) is not a leftover. Names without a process id
    come from an older seamtape and are leftovers.
    """
    path = Path(path)
    found = []
    for scratch in sorted(path.parent.glob(f".{glob.escape(path.name)}.*.recording")):
        owner = scratch.name[len(path.name) + 2 : -len(".recording")].partition("-")[0]
        if not (owner.isdigit() and _running(int(owner))):
            found.append(scratch)
    return found


def remove_leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``leftover_recordings`` beside a tape; returns what was removed."""
    removed = leftover_recordings(path)
    for leftover in removed:
        remove_tape(leftover)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Rewrite:
    """A scratch copy of the tape at ``path``, swapped in by :meth:`commit` or dropped.

    ``copy=False`` starts the scratch empty (a tape recorded anew). Used as a context
    manager, a block that ends without ``commit()`` discards the scratch. Scratch copies left
    beside the tape by a killed run are removed first and listed in ``removed``: the tape
    itself is as that run found it, since only a finished recording is swapped in.
    """

    def __init__(self, path: str | os.PathLike[str], *, copy: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.removed = remove_leftovers(self.path)
        self.scratch = self.path.with_name(
            f".{self.path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.recording"
        )
        self._done = False
        if copy and self.path.is_file():
            copy_tape(self.path, self.scratch)

    def commit(self) -> None:
        """Atomically replace the tape with the scratch copy."""
        if self._done:
            return
        self._done = True
        _remove_sidecars(self.path)
        os.replace(self.scratch, self.path)
        _remove_sidecars(self.scratch)

    def discard(self) -> None:
        """Drop the scratch copy; the tape stays as it was."""
        if self._done:
            return
        self._done = True
        remove_tape(self.scratch)

    def __enter__(self) -> Rewrite:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.discard()
