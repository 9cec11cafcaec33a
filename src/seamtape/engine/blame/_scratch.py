"""Where blame's trial runs go: never into the tape a user replays, so that a trial never
becomes "the latest" run of it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from seamtape._errors import SeamtapeError
from seamtape.tape import Tape

__all__ = ["scratch_path", "trials_tape"]


def scratch_path(tape: str | os.PathLike[str]) -> Path:
    """The default scratch tape beside ``tape``: ``name.tape`` -> ``name.trials.tape``."""
    path = Path(tape)
    return path.with_name(f"{path.stem}.trials{path.suffix or '.tape'}")


def trials_tape(
    tape: str | os.PathLike[str], run_id: str, into: str | os.PathLike[str] | None
) -> Path:
    """The tape blame's forks are written into, holding run ``run_id`` so that they can replay
    its prefix: ``into`` (or the scratch tape beside ``tape``), refreshed from ``tape`` by an
    SQLite online backup unless it already holds the run."""
    source = Path(tape).resolve()
    target = (Path(into) if into is not None else scratch_path(source)).resolve()
    if target == source:
        raise SeamtapeError(
            f"--into {target} is the tape being blamed; trials go to another tape, so that "
            "replaying it never picks a trial"
        )
    if target.exists() and _holds(target, run_id):
        return target
    try:
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
    except sqlite3.Error as exc:
        raise SeamtapeError(f"cannot copy {source} into the trials tape {target}: {exc}") from None
    return target


def _holds(path: Path, run_id: str) -> bool:
    try:
        with Tape(path) as t:
            return any(r.id == run_id for r in t.runs())
    except SeamtapeError:
        return False
