"""Keeping a tape small: ``gc`` (unreferenced blobs), ``prune`` (runs), ``merge`` (tapes).

Each operation is one SQLite transaction on the tape itself, so a crash midway leaves the
tape as it was before (or, once committed, as it is after), and a recorder or reader that
has the tape open meanwhile keeps working: SQLite's lock serializes them. A copy-and-swap
(:class:`Rewrite`) would be atomic too, but a process still writing through the old file
would lose its writes, so the in-place transaction is used here. Space freed by a delete is
handed back to the file system afterwards (``incremental_vacuum``, or one ``VACUUM`` for a
tape created before auto-vacuum was on; SQLite makes both atomic).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import TapeError
from ._tape import Tape

__all__ = ["GcReport", "MergeReport", "PruneReport", "gc", "merge", "prune", "tape_bytes"]


@dataclass
class GcReport:
    path: str
    blobs_removed: int = 0
    bytes_before: int = 0  # the tape with its write-ahead log, as the file system counts them
    bytes_after: int = 0


@dataclass
class PruneReport(GcReport):
    runs_removed: list[str] = field(default_factory=list)
    exchanges_removed: int = 0


@dataclass
class MergeReport:
    path: str
    runs_added: list[str] = field(default_factory=list)
    runs_skipped: list[str] = field(default_factory=list)  # already in the tape, identical
    blobs_added: int = 0
    blobs_shared: int = 0  # bodies the tape already held, stored once


def tape_bytes(path: str | os.PathLike[str]) -> int:
    """The tape's size on disk: the file and its write-ahead log."""
    path = Path(path)
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


# Unreferenced: no exchange names it and no delta is stored against it. Deleting a delta can
# leave its base unreferenced, hence the loop in _drop_unreferenced.
_UNREFERENCED = """
DELETE FROM blob WHERE hash NOT IN (SELECT request_body FROM exchange)
    AND hash NOT IN (SELECT response_body FROM exchange)
    AND hash NOT IN (SELECT base FROM blob WHERE base IS NOT NULL)
"""


def _drop_unreferenced(db: sqlite3.Connection) -> int:
    removed = 0
    while True:
        count = db.execute(_UNREFERENCED).rowcount
        if count <= 0:
            return removed
        removed += count


def _reclaim(tape: Tape) -> None:
    """Give the free pages back to the file system and fold the write-ahead log in."""
    db = tape._db
    with tape._guard():
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:  # incremental
            # Stepped to the end by sqlite3_exec: execute() would free a single page.
            db.executescript("PRAGMA incremental_vacuum;")
        elif db.execute("PRAGMA freelist_count").fetchone()[0]:
            # A tape from before auto-vacuum: one VACUUM turns it on and compacts the file.
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("VACUUM")
        # Another process's open read keeps the log; then it is folded in later, by SQLite.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def gc(path: str | os.PathLike[str]) -> GcReport:
    """Drop the blobs no run references any more, and reclaim their space."""
    report = GcReport(str(path), bytes_before=tape_bytes(path))
    with Tape(path) as tape:
        with tape._write() as db:
            report.blobs_removed = _drop_unreferenced(db)
        _reclaim(tape)
    report.bytes_after = tape_bytes(path)
    return report


def prune(
    path: str | os.PathLike[str],
    *,
    runs: Sequence[str] = (),
    older_than: float | None = None,
    keep_last: int | None = None,
    now: float | None = None,
) -> PruneReport:
    """Remove runs, with their forks, and the blobs only they used.

    A run and the forks made from it (at any depth) are one family: a fork never outlives
    its parent. ``runs`` names runs (id, unique id prefix or name) to remove with their
    forks; ``older_than`` removes the families whose every run was created more than that
    many seconds ago; ``keep_last`` keeps only the latest N families (by their root run).
    """
    if keep_last is not None and keep_last < 0:
        raise TapeError("keep_last must be 0 or more")
    if older_than is not None and older_than < 0:
        raise TapeError("older_than must be 0 seconds or more")
    report = PruneReport(str(path), bytes_before=tape_bytes(path))
    with Tape(path) as tape:
        chosen = {tape.run(r).id for r in runs}
        with tape._write() as db:
            if older_than is not None:
                # A run and its forks are one family, as old as its newest member.
                cutoff = (time.time() if now is None else now) - older_than
                for root in _ids(
                    db, "SELECT id FROM run WHERE parent IS NULL AND created < ?", cutoff
                ):
                    family = _with_forks(db, [root])
                    marks = ",".join("?" * len(family))
                    newest = db.execute(
                        f"SELECT max(created) FROM run WHERE id IN ({marks})", sorted(family)
                    ).fetchone()[0]
                    if newest < cutoff:
                        chosen |= family
            if keep_last is not None:
                roots = _ids(
                    db,
                    "SELECT id FROM run WHERE parent IS NULL "
                    "ORDER BY created DESC, rowid DESC LIMIT -1 OFFSET ?",
                    keep_last,
                )
                chosen |= roots
            doomed = _with_forks(db, chosen)
            doomed -= _ancestors(db, _ids(db, "SELECT id FROM run") - doomed)
            marks = ",".join("?" * len(doomed))
            ordered = sorted(doomed)
            if ordered:
                report.exchanges_removed = db.execute(
                    f"DELETE FROM exchange WHERE run IN ({marks})", ordered
                ).rowcount
                db.execute(f"DELETE FROM draw WHERE run IN ({marks})", ordered)
                db.execute(f"DELETE FROM run WHERE id IN ({marks})", ordered)
                report.blobs_removed = _drop_unreferenced(db)
            report.runs_removed = ordered
        _reclaim(tape)
    report.bytes_after = tape_bytes(path)
    return report


def _ids(db: sqlite3.Connection, sql: str, *args: object) -> set[str]:
    return {r[0] for r in db.execute(sql, args)}


def _with_forks(db: sqlite3.Connection, runs: Iterable[str]) -> set[str]:
    """These runs and every run forked from them, at any depth (through run_parent)."""
    found, frontier = set(runs), set(runs)
    while frontier:
        marks = ",".join("?" * len(frontier))
        frontier = _ids(db, f"SELECT id FROM run WHERE parent IN ({marks})", *frontier) - found
        found |= frontier
    return found


def _ancestors(db: sqlite3.Connection, runs: Iterable[str]) -> set[str]:
    """The parents of these runs, at any depth: a kept fork keeps the runs it came from."""
    found: set[str] = set()
    frontier = set(runs)
    while frontier:
        marks = ",".join("?" * len(frontier))
        parents = _ids(
            db, f"SELECT parent FROM run WHERE id IN ({marks}) AND parent IS NOT NULL", *frontier
        )
        frontier = parents - found
        found |= parents
    return found


def merge(into: str | os.PathLike[str], sources: Sequence[str | os.PathLike[str]]) -> MergeReport:
    """Copy every run of ``sources`` into the tape ``into`` (created if missing).

    Bodies are copied once: a blob the tape already holds is shared, whatever tape it came
    from. A run already in the tape with the same digest is skipped; one with the same id
    and different contents is refused. All sources are merged in one transaction.
    """
    report = MergeReport(str(into))
    target = Path(into).resolve()
    for source in sources:
        if Path(source).resolve() == target:
            raise TapeError(f"{source}: cannot merge a tape into itself")
        with Tape(source) as tape:  # refuses a missing, damaged or newer tape
            tape.upgrade()  # the copy below reads schema 2's columns
    with Tape(into, create=True) as tape:
        db = tape._db
        with contextlib.ExitStack() as attached:
            for i, source in enumerate(sources):
                with tape._guard():
                    db.execute(f"ATTACH DATABASE ? AS src{i}", (os.fspath(source),))
                attached.callback(_detach, tape, f"src{i}")
            with tape._write():
                for i, source in enumerate(sources):
                    _merge_one(db, f"src{i}", str(source), report)
    return report


def _detach(tape: Tape, name: str) -> None:
    with tape._guard():
        tape._db.execute(f"DETACH DATABASE {name}")


_RUN_FIELDS = (
    "id, name, created, parent, fork_step, mutation, upstream, status, result, outcome, digest"
)
_EXCHANGE_FIELDS = (
    "run, seq, batch, method, url, request_headers, request_body, status, response_headers, "
    "http_version, reason, response_body, chunks, error, started, ended"
)


def _merge_one(db: sqlite3.Connection, src: str, label: str, report: MergeReport) -> None:
    new_runs: list[str] = []
    for run_id, digest in db.execute(f"SELECT id, digest FROM {src}.run ORDER BY created, rowid"):
        row = db.execute("SELECT digest FROM main.run WHERE id=?", (run_id,)).fetchone()
        if row is None:
            new_runs.append(run_id)
        elif row[0] == digest and digest is not None:
            report.runs_skipped.append(run_id)
        else:
            raise TapeError(
                f"{label}: run {run_id} is already in the tape with different contents; "
                "nothing was merged"
            )
    if not new_runs:
        return
    db.execute("CREATE TEMP TABLE IF NOT EXISTS merging (id TEXT PRIMARY KEY)")
    db.execute("DELETE FROM temp.merging")
    db.executemany("INSERT INTO temp.merging VALUES(?)", [(r,) for r in new_runs])
    # The blobs the new runs need: their bodies, and the bases of those stored as deltas.
    needed = f"""
        WITH RECURSIVE needed(hash) AS (
            SELECT request_body FROM {src}.exchange WHERE run IN (SELECT id FROM temp.merging)
            UNION SELECT response_body FROM {src}.exchange WHERE run IN (SELECT id FROM temp.merging)
            UNION SELECT b.base FROM {src}.blob b JOIN needed n ON b.hash = n.hash
                WHERE b.base IS NOT NULL
        )
    """
    total = db.execute(f"{needed} SELECT count(*) FROM needed").fetchone()[0]
    added = db.execute(
        f"{needed} INSERT OR IGNORE INTO main.blob(hash, size, codec, data, base) "
        f"SELECT hash, size, codec, data, base FROM {src}.blob "
        "WHERE hash IN (SELECT hash FROM needed)"
    ).rowcount
    report.blobs_added += added
    report.blobs_shared += total - added
    db.execute(
        f"INSERT INTO main.run({_RUN_FIELDS}) SELECT {_RUN_FIELDS} FROM {src}.run "
        "WHERE id IN (SELECT id FROM temp.merging) ORDER BY created, rowid"
    )
    db.execute(
        f"INSERT INTO main.exchange({_EXCHANGE_FIELDS}) SELECT {_EXCHANGE_FIELDS} "
        f"FROM {src}.exchange WHERE run IN (SELECT id FROM temp.merging)"
    )
    db.execute(
        f"INSERT INTO main.draw(run, seq, step, kind, value) SELECT run, seq, step, kind, value "
        f"FROM {src}.draw WHERE run IN (SELECT id FROM temp.merging)"
    )
    report.runs_added.extend(new_runs)
