"""Schema 2's ``run.sim_policy``: read from older tapes without writing to them, added on the
first write, and stored by a recording against the simulator."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import seamtape
from seamtape.tape import SCHEMA_VERSION, Tape

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def schema_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])


def columns(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute("PRAGMA table_info(run)")}


def version_1_tape(tmp_path: Path) -> Path:
    path = tmp_path / "old.tape"
    shutil.copy(FIXTURES / "trip.tape", path)
    assert schema_version(path) == 1 and "sim_policy" not in columns(path)
    return path


def test_an_older_tape_is_read_without_being_written(tmp_path: Path) -> None:
    path = version_1_tape(tmp_path)
    before = path.read_bytes()

    with Tape(path) as tape:
        runs = tape.runs()

    assert runs and all(run.sim_policy is None for run in runs)
    assert path.read_bytes() == before


def test_the_first_write_upgrades_it_and_keeps_every_run(tmp_path: Path) -> None:
    path = version_1_tape(tmp_path)
    with Tape(path) as tape:
        old = [(r.id, r.digest) for r in tape.runs()]

    with seamtape.record(path, upstream="http://127.0.0.1:1", sim_policy="stochastic:seed=3"):
        pass

    assert schema_version(path) == SCHEMA_VERSION == 2 and "sim_policy" in columns(path)
    with Tape(path) as tape:
        runs = tape.runs()
    assert [(r.id, r.digest) for r in runs[:-1]] == old
    assert runs[-1].sim_policy == "stochastic:seed=3"


def test_two_handles_opened_before_the_upgrade_both_write(tmp_path: Path) -> None:
    """The second writer finds the tape upgraded by the first and does not upgrade it again."""
    path = version_1_tape(tmp_path)
    first, second = Tape(path), Tape(path)
    try:
        first.create_run("a", sim_policy="stochastic")
        second.create_run("b", sim_policy="stochastic:seed=1")
    finally:
        first.close()
        second.close()
    with Tape(path) as tape:
        assert [r.sim_policy for r in tape.runs()[-2:]] == ["stochastic", "stochastic:seed=1"]
