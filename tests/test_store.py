"""Maintenance: gc, prune, merge, export and import keep every surviving run replaying
bit-exact, store each body once, and leave a consistent tape when killed midway."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

import seamtape
from seamtape.tape import Tape, export_runs, gc, import_runs, merge, prune, verify

URL = "http://model.test/v1/messages"


def _answer(request: httpx2.Request) -> httpx2.Response:
    turns = len(json.loads(request.content)["messages"])
    if turns == 3:  # one binary body, to be exported as base64
        return httpx2.Response(200, content=bytes(range(256)) * 4)
    return httpx2.Response(200, json={"content": [{"text": f"answer {turns} " * 30}]})


def _conversation(tag: str, turns: int = 5) -> list[bytes]:
    messages, bodies = [], []
    for i in range(turns):
        messages.append({"role": "user", "content": f"{tag} turn {i}: " + "context " * 120})
        bodies.append(json.dumps({"model": "m", "messages": messages}).encode())
    return bodies


def _record(path: Path, bodies: list[bytes], name: str) -> str:
    with (
        seamtape.record(path, name=name) as session,
        session.httpx2_client(transport=httpx2.MockTransport(_answer)) as client,
    ):
        for body in bodies:
            client.post(URL, content=body)
        session.nondet.uuid4()
        session.result = {"name": name}
    return session.run_id


def _fork(path: Path, run: str, bodies: list[bytes], name: str) -> str:
    """A run forked from ``run``: its prefix served, then new requests recorded."""
    with (
        seamtape.extend(path, run=run, name=name) as session,
        session.httpx2_client(transport=httpx2.MockTransport(_answer)) as client,
    ):
        for body in bodies:
            client.post(URL, content=body)
    return session.run_id


def _replays(path: Path, run: str) -> None:
    """The run replays bit-exact: every request answered as recorded, digest equal."""
    with Tape(path) as tape:
        info = tape.run(run)
        recorded = [(ex.request_bytes(), ex.response_bytes()) for ex in tape.exchanges(info.id)]
        draws = tape.draws(info.id)
    with seamtape.replay(path, run=info.id, partial=True) as session:
        with session.httpx2_client() as client:
            for request, response in recorded:
                assert client.post(URL, content=request).content == response
        for _ in draws:
            session.nondet.uuid4()
        if info.has_result:
            session.result = info.result
    assert session.digest == info.digest


def _state(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    try:
        return {
            "runs": sorted(r[0] for r in db.execute("SELECT id FROM run")),
            "blobs": sorted(r[0] for r in db.execute("SELECT hash FROM blob")),
            "exchanges": db.execute("SELECT count(*) FROM exchange").fetchone()[0],
        }
    finally:
        db.close()


@pytest.fixture
def family(tmp_path: Path) -> dict[str, Any]:
    """A tape with two root runs (older 'a', newer 'b'), and 'a' forked twice (a fork of a fork)."""
    path = tmp_path / "family.tape"
    a = _conversation("a")
    run_a = _record(path, a, "a")
    fork = _fork(path, run_a, [*a[:3], *_conversation("f")[3:]], "fork")
    fork2 = _fork(path, fork, [*a[:3], *_conversation("f")[3:4], b'{"messages": []}'], "fork2")
    run_b = _record(path, _conversation("b"), "b")
    return {"path": path, "a": run_a, "fork": fork, "fork2": fork2, "b": run_b}


# -- gc ---------------------------------------------------------------------------------------


def test_gc_drops_unreferenced_blobs_and_delta_bases_only_orphans_used(tmp_path: Path) -> None:
    path = tmp_path / "t.tape"
    run = _record(path, _conversation("kept"), "kept")
    with Tape(path) as tape:
        orphans = _conversation("orphan", turns=4)  # written as a delta chain
        orphan_keys = [tape.put_blob(b) for b in orphans]
        assert tape._db.execute("SELECT count(*) FROM blob WHERE base IS NOT NULL").fetchone()[0]
    before = _state(path)
    report = gc(path)
    after = _state(path)
    assert report.blobs_removed == len(orphan_keys)
    assert set(after["blobs"]) == set(before["blobs"]) - set(orphan_keys)
    assert verify(path).ok
    _replays(path, run)
    assert gc(path).blobs_removed == 0


def test_gc_gives_the_space_back(tmp_path: Path) -> None:
    path = tmp_path / "t.tape"
    _record(path, _conversation("kept", turns=2), "kept")
    with Tape(path) as tape:
        for _ in range(40):
            tape.put_blob(os.urandom(20_000))
    report = gc(path)
    assert report.blobs_removed == 40
    assert report.bytes_after < report.bytes_before - 700_000
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    db.close()


# -- prune ------------------------------------------------------------------------------------


def test_prune_a_run_takes_its_forks_and_only_their_bodies(family: dict[str, Any]) -> None:
    path = family["path"]
    report = prune(path, runs=[family["fork"]])
    assert sorted(report.runs_removed) == sorted([family["fork"], family["fork2"]])
    assert _state(path)["runs"] == sorted([family["a"], family["b"]])
    assert verify(path).ok
    _replays(path, family["a"])  # shared the fork's prefix bodies: all still there
    _replays(path, family["b"])


def test_keep_last_counts_root_runs_and_a_kept_fork_keeps_its_parents(
    family: dict[str, Any],
) -> None:
    path = family["path"]
    report = prune(path, keep_last=1)  # b is the latest root run: a and its forks go
    assert sorted(report.runs_removed) == sorted([family["a"], family["fork"], family["fork2"]])
    assert verify(path).ok
    _replays(path, family["b"])
    with Tape(path) as tape:
        kept = tape.run(family["b"])
        bodies = {ex.request_body for ex in tape.exchanges(kept.id)}
    assert len(_state(path)["blobs"]) <= 2 * len(bodies) + 1


def test_prune_by_age_never_orphans_a_fork_that_stays(family: dict[str, Any]) -> None:
    path = family["path"]
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE run SET created = 0 WHERE id = ?", (family["a"],))  # very old
        db.execute("UPDATE run SET created = 0 WHERE id = ?", (family["fork"],))
    db.close()
    # a and fork are old, fork2 (a fork of fork) is not: it keeps its parents.
    report = prune(path, older_than=3600)
    assert report.runs_removed == []
    prune(path, runs=[family["fork2"]])
    report = prune(path, older_than=3600)
    assert sorted(report.runs_removed) == sorted([family["a"], family["fork"]])
    assert verify(path).ok


def test_prune_names_an_unknown_run(family: dict[str, Any]) -> None:
    before = _state(family["path"])
    with pytest.raises(seamtape.TapeError, match="no run 'nope'"):
        prune(family["path"], runs=["nope"])
    assert _state(family["path"]) == before


# -- merge ------------------------------------------------------------------------------------


def test_merge_stores_shared_bodies_once_and_every_run_replays(tmp_path: Path) -> None:
    one, two, into = tmp_path / "one.tape", tmp_path / "two.tape", tmp_path / "into.tape"
    shared = _conversation("shared", turns=4)
    run_one = _record(one, shared, "one")
    run_two = _record(two, [*shared, *_conversation("more")[4:]], "two")
    blobs = set(_state(one)["blobs"]) | set(_state(two)["blobs"])

    report = merge(into, [one, two])
    assert sorted(report.runs_added) == sorted([run_one, run_two])
    assert report.blobs_shared > 0
    assert set(_state(into)["blobs"]) == blobs
    assert verify(into).ok
    _replays(into, run_one)
    _replays(into, run_two)

    again = merge(into, [one])
    assert again.runs_added == [] and again.runs_skipped == [run_one]


def test_merge_refuses_a_run_id_with_different_contents(tmp_path: Path) -> None:
    one, two = tmp_path / "one.tape", tmp_path / "two.tape"
    run = _record(one, _conversation("x", 2), "x")
    shutil.copyfile(one, two)
    db = sqlite3.connect(two)
    with db:
        db.execute("UPDATE run SET digest = 'other' WHERE id = ?", (run,))
    db.close()
    before = _state(one)
    with pytest.raises(seamtape.TapeError, match="different contents"):
        merge(one, [two])
    assert _state(one) == before


# -- export / import --------------------------------------------------------------------------


def test_export_import_round_trips_byte_exact(family: dict[str, Any], tmp_path: Path) -> None:
    path = family["path"]
    out = tmp_path / "runs.jsonl"
    out.write_text("\n".join(export_runs(Tape(path))) + "\n")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    exchanges = [line for line in lines if line.get("type") == "exchange"]
    # Readable in review: a JSON body is JSON, a binary one base64.
    assert exchanges[0]["request"]["json"]["messages"][0]["role"] == "user"
    assert any("base64" in line["response"] for line in exchanges)

    copy = tmp_path / "copy.tape"
    with out.open() as fh:
        report = import_runs(copy, fh)
    assert len(report.runs_added) == 4
    assert verify(copy).ok
    with Tape(path) as original, Tape(copy) as imported:
        for run in original.runs():
            mine = imported.run(run.id)
            assert (mine.parent, mine.fork_step, mine.digest) == (
                run.parent,
                run.fork_step,
                run.digest,
            )
            assert [
                (e.request_bytes(), e.response_bytes(), e.response_headers_json, e.chunks_json)
                for e in imported.exchanges(run.id)
            ] == [
                (e.request_bytes(), e.response_bytes(), e.response_headers_json, e.chunks_json)
                for e in original.exchanges(run.id)
            ]
    for run in ("a", "fork", "fork2", "b"):
        _replays(copy, family[run])
    # A second import of the same runs adds nothing.
    with out.open() as fh:
        assert import_runs(copy, fh).runs_skipped == report.runs_added


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('"answer 2 ', '"answer 9 ', 1), "does not match its sha256"),
        (lambda t: t.replace('{"format": "seamtape-runs"', '{"format": "x"', 1), "not a seamtape"),
        (lambda t: t + "{not json\n", "not JSON"),
        (lambda t: "", "empty file"),
    ],
)
def test_a_bad_export_is_refused_with_one_line_and_nothing_imported(
    family: dict[str, Any], tmp_path: Path, edit: Any, message: str
) -> None:
    text = "\n".join(export_runs(Tape(family["path"]))) + "\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(edit(text))
    target = tmp_path / "target.tape"
    _record(target, _conversation("mine", 2), "mine")
    before = _state(target)
    result = subprocess.run(
        [sys.executable, "-m", "seamtape", "import", str(target), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert _state(target) == before


def test_the_cli_faces_call_the_library(family: dict[str, Any], tmp_path: Path) -> None:
    path = family["path"]
    out = tmp_path / "all.jsonl"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "seamtape", *args], capture_output=True, text=True, timeout=60
        )

    assert cli("export", str(path), "--out", str(out)).returncode == 0
    assert cli("import", str(tmp_path / "new.tape"), str(out)).returncode == 0
    assert (
        cli("merge", str(tmp_path / "m.tape"), str(path), str(tmp_path / "new.tape")).returncode
        == 0
    )
    done = cli("prune", str(path), "--run", family["fork"])
    assert done.returncode == 0 and "removed 2 run(s)" in done.stdout
    assert cli("gc", str(path)).returncode == 0
    bad = cli("prune", str(path), "--older-than", "soon")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert cli("prune", str(path)).returncode == 2
    assert verify(path).ok


# -- a kill midway leaves a consistent tape ---------------------------------------------------

KILL_AFTER = """
import os, signal, sqlite3, sys
from pathlib import Path
from seamtape import tape as T

limit, op, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ticks = [0]
real_connect = sqlite3.connect

def connect(*a, **k):
    db = real_connect(*a, **k)
    def tick():
        ticks[0] += 1
        if limit and ticks[0] >= limit:
            os.kill(os.getpid(), signal.SIGKILL)  # no finally, no rollback: a crash
        return 0
    db.set_progress_handler(tick, 200)
    return db

sqlite3.connect = connect
if op == "gc":
    T.gc(args[0])
elif op == "prune":
    T.prune(args[0], runs=[args[1]])
elif op == "merge":
    T.merge(args[0], args[1:])
elif op == "import":
    with open(args[1]) as fh:
        T.import_runs(args[0], fh)
elif op == "export":
    T.write_export(args[0], args[1])
print(ticks[0])
"""


def _kill_run(limit: int, op: str, *args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", KILL_AFTER, str(limit), op, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("op", ["gc", "prune", "merge", "import", "export"])
def test_a_kill_midway_leaves_the_tape_as_before_or_as_after(
    op: str, family: dict[str, Any], tmp_path: Path
) -> None:
    path = family["path"]
    with Tape(path) as tape:  # something for gc to do
        for body in _conversation("orphan", turns=3):
            tape.put_blob(body)
    source = tmp_path / "other.tape"
    _record(source, _conversation("other"), "other")
    export = tmp_path / "runs.jsonl"
    export.write_text("\n".join(export_runs(Tape(source))) + "\n")
    target = {"gc": path, "prune": path, "merge": path, "import": path, "export": export}[op]
    args = {
        "gc": [path],
        "prune": [path, family["fork"]],
        "merge": [path, source],
        "import": [path, export],
        "export": [path, tmp_path / "out.jsonl"],
    }[op]

    pristine = tmp_path / "pristine"
    pristine.mkdir()
    for f in (path, export):
        shutil.copyfile(f, pristine / f.name)
    done = _kill_run(0, op, *args)  # once to the end: how long it runs, and what "after" is
    assert done.returncode == 0, done.stderr
    total = int(done.stdout.strip())
    after = _state(path)
    after_export = (tmp_path / "out.jsonl").read_text() if op == "export" else None

    killed = 0
    for share in (0.2, 0.5, 0.8):
        for f in (path, export):
            shutil.copyfile(pristine / f.name, f)
            for side in ("-wal", "-shm"):
                Path(str(f) + side).unlink(missing_ok=True)
        (tmp_path / "out.jsonl").unlink(missing_ok=True)
        before = _state(path)
        result = _kill_run(max(1, int(total * share)), op, *args)
        killed += result.returncode == -9
        assert result.returncode in (0, -9), result.stderr
        assert verify(path).ok
        assert _state(path) in (before, after)
        if op == "export":
            written = tmp_path / "out.jsonl"
            assert not written.exists() or written.read_text() == after_export
        for run in _state(path)["runs"]:
            _replays(path, run)
    assert killed >= 2  # the kills really landed midway
    assert target.exists()
