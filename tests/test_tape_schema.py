"""Schema 2: a delta's base is a column, forks are indexed by parent, and a tape written by
schema 1 opens and is upgraded in place, whole or not at all.

``tests/data/schema1.tape`` was recorded by the schema-1 code (the release before schema 2):
a six-turn conversation whose later requests were stored as schema-1 deltas (the base hash
packed in front of the data), a zstd-compressed body, a draw and a result.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import httpx2
import pytest

import seamtape
from seamtape.tape import SCHEMA_VERSION, Tape, _tape, blob_hash, verify

SCHEMA1 = Path(__file__).parent / "data" / "schema1.tape"


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.fixture
def old_tape(tmp_path: Path) -> Path:
    path = tmp_path / "old.tape"
    shutil.copyfile(SCHEMA1, path)
    assert _query(path, "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    return path


def _bodies(path: Path) -> dict[bytes, bytes]:
    """Every body of the tape, decoded by the code that reads the tape's own schema."""
    with Tape(path) as tape:
        return {
            h: tape.blob(h)
            for (h,) in tape._db.execute("SELECT hash FROM blob ORDER BY rowid").fetchall()
        }


def test_a_schema_1_tape_is_upgraded_in_place_and_replays_bit_exact(old_tape: Path) -> None:
    deltas_before = _query(old_tape, "SELECT hash, substr(data, 1, 32) FROM blob WHERE codec=2")
    assert len(deltas_before) >= 3  # the committed tape really holds schema-1 deltas

    report = verify(old_tape)  # read as it is: schema-1 deltas decode, nothing written
    assert report.ok, report.problems
    assert _query(old_tape, "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    with Tape(old_tape) as tape:  # the first write upgrades it (here: asked for directly)
        tape.upgrade()
    assert verify(old_tape).ok
    assert _query(old_tape, "SELECT value FROM meta WHERE key='schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]
    # The base moved out of the data into its own column, which references a stored blob.
    assert sorted(_query(old_tape, "SELECT hash, base FROM blob WHERE codec=2")) == sorted(
        deltas_before
    )
    assert _query(
        old_tape, "SELECT count(*) FROM blob d WHERE d.base NOT IN (SELECT hash FROM blob)"
    ) == [(0,)]
    indexes = {r[0] for r in _query(old_tape, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"run_parent", "blob_base"} <= indexes
    plan = " ".join(
        str(r) for r in _query(old_tape, "EXPLAIN QUERY PLAN SELECT id FROM run WHERE parent='x'")
    )
    assert "run_parent" in plan

    for digest, body in _bodies(old_tape).items():
        assert blob_hash(body) == digest
    with Tape(old_tape) as tape:
        run = tape.run()
        exchanges = tape.exchanges(run.id)
        recorded = [(ex.url, ex.request_bytes(), ex.response_bytes()) for ex in exchanges]
    with seamtape.replay(old_tape) as session, session.httpx2_client() as client:
        for url, request, response in recorded:
            assert client.post(url, content=request).content == response
        session.nondet.uuid4()
        session.result = {"turns": 6}
    assert session.digest == run.digest


def test_an_upgrade_that_fails_midway_leaves_the_schema_1_tape_as_it_was(
    old_tape: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _query(old_tape, "SELECT hash, codec, data FROM blob ORDER BY hash")
    schema_before = _query(old_tape, "SELECT sql FROM sqlite_master ORDER BY name")

    def upgrade_then_fail(db: sqlite3.Connection) -> None:
        _tape._run_script(db, _tape._SCHEMA_V2)  # every statement ran...
        raise OSError("disk full")  # ...and then the upgrade stopped

    monkeypatch.setattr(_tape, "_MIGRATIONS", [_tape._MIGRATIONS[0], upgrade_then_fail])
    with pytest.raises(OSError, match="disk full"), Tape(old_tape) as tape:
        tape.upgrade()
    assert _query(old_tape, "SELECT value FROM meta WHERE key='schema_version'") == [("1",)]
    assert _query(old_tape, "SELECT hash, codec, data FROM blob ORDER BY hash") == before
    assert _query(old_tape, "SELECT sql FROM sqlite_master ORDER BY name") == schema_before

    monkeypatch.undo()
    with Tape(old_tape) as tape:  # and the next write upgrades it
        tape.upgrade()
    assert verify(old_tape).ok
    assert _query(old_tape, "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]


def test_a_new_tape_stores_a_delta_base_as_a_reference(tmp_path: Path) -> None:
    path = tmp_path / "new.tape"
    first = b'{"messages": ["' + b"a" * 4000 + b'"]}'
    second = first[:-2] + b', "next turn"]}'
    with (
        seamtape.record(path) as session,
        session.httpx2_client(
            transport=httpx2.MockTransport(lambda r: httpx2.Response(200, content=b"{}"))
        ) as client,
    ):
        client.post("http://model.test/v1", content=first)
        client.post("http://model.test/v1", content=second)
    [(base, data_length)] = _query(
        path, f"SELECT base, length(data) FROM blob WHERE hash=x'{blob_hash(second).hex()}'"
    )
    assert base == blob_hash(first)
    assert data_length < 100  # the new turn and a small header, not the 4 KB it repeats


def test_statements_are_cut_where_sqlite_says_they_end() -> None:
    script = """
    CREATE TABLE t (a TEXT);  -- a comment; with a semicolon
    INSERT INTO t VALUES ('one; two');
    -- only a comment at the end; nothing to run
    """
    statements = _tape._statements(script)
    assert len(statements) == 2
    db = sqlite3.connect(":memory:")
    _tape._run_script(db, script)
    assert db.execute("SELECT a FROM t").fetchall() == [("one; two",)]
    with pytest.raises(ValueError, match="incomplete"):
        _tape._statements("CREATE TABLE u (a TEXT); INSERT INTO u VALUES ('x'")


UPGRADE = """
import sys
from seamtape.tape import Tape
sys.stdin.readline()
with Tape(sys.argv[1]) as tape:
    tape.upgrade()
"""


def test_processes_opening_one_schema_1_tape_together_upgrade_it_once(old_tape: Path) -> None:
    import subprocess
    import sys

    children = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE, str(old_tape)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    assert verify(old_tape).ok
    assert _query(old_tape, "SELECT value FROM meta WHERE key='schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]
