"""A tape grows linearly with what a run adds, during recording and after, and opening one
run of a tape of many reads what that run needs, not the whole tape."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx2
import pytest

import seamtape
from seamtape.tape import Tape, blob_hash, tape_bytes

URL = "http://model.test/v1/messages"


def _answer(request: httpx2.Request) -> httpx2.Response:
    turn = len(json.loads(request.content)["messages"])
    text = " ".join(f"w{(turn * 7919 + i * 31) % 997}" for i in range(120))
    return httpx2.Response(200, json={"content": [{"type": "text", "text": text}]})


def _conversation(path: Path, steps: int, mark: int = 0) -> tuple[int, int, list[bytes]]:
    """(new content, tape bytes at ``mark`` while recording, request bodies)."""
    messages: list[dict[str, object]] = []
    new, previous, during, sent = 0, 0, 0, []
    with (
        seamtape.record(path) as session,
        session.httpx2_client(transport=httpx2.MockTransport(_answer)) as client,
    ):
        for i in range(1, steps + 1):
            words = " ".join(f"u{(i * 104729 + k * 17) % 991}" for k in range(60))
            messages.append({"role": "user", "content": f"turn {i}: {words}"})
            body = json.dumps({"system": "rules " * 300, "messages": messages}).encode()
            reply = client.post(URL, content=body)
            sent.append(body)
            new += len(body) - previous + len(reply.content)
            previous = len(body)
            messages.append({"role": "assistant", "content": reply.json()["content"]})
            if i == mark:
                during = tape_bytes(path)
    return new, during, sent


def test_a_long_conversation_grows_linearly_and_leaves_no_free_pages(tmp_path: Path) -> None:
    _, during_60, _ = _conversation(tmp_path / "a.tape", 60, mark=60)
    new_120, during_120, sent = _conversation(tmp_path / "b.tape", 120, mark=60)
    after_60, after_120 = tape_bytes(tmp_path / "a.tape"), tape_bytes(tmp_path / "b.tape")
    assert after_120 <= 2 * new_120  # the target, at a size this test can afford
    # Twice the steps, about twice the bytes: the whole-body store would be four times.
    assert after_120 - after_60 <= 1.3 * (after_60 - 16 * 4096)
    # While recording too: the tape at step 60 of the longer run is the shorter run's size,
    # with a write-ahead log that never grows past its bound.
    assert during_120 == pytest.approx(during_60, rel=0.05)
    assert during_60 <= after_60 + 1_100_000
    db = sqlite3.connect(tmp_path / "b.tape")
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    db.close()
    with Tape(tmp_path / "b.tape") as tape:  # the deepest delta, read cold, is exact
        assert tape.blob(blob_hash(sent[-1])) == sent[-1]


def test_a_damaged_delta_is_refused_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "c.tape"
    _, _, sent = _conversation(path, 8)
    target = blob_hash(sent[-1])
    db = sqlite3.connect(path)
    with db:
        (codec, data) = db.execute(
            "SELECT codec, data FROM blob WHERE hash=?", (target,)
        ).fetchone()
        assert codec in (2, 3)
        damaged = data[:16] + bytes([data[16] ^ 1]) + data[17:]
        db.execute("UPDATE blob SET data=? WHERE hash=?", (damaged, target))
    db.close()
    with Tape(path) as tape, pytest.raises(seamtape.TapeError, match="damaged tape"):
        tape.blob(target)


def _vm_steps_to_first_response(path: Path, run: str | None, first: bytes) -> int:
    """SQLite virtual-machine steps from opening a run to its first replayed response."""
    steps = [0]
    real = sqlite3.connect

    def counting(*args: object, **kw: object) -> sqlite3.Connection:
        db = real(*args, **kw)  # type: ignore[arg-type]

        def tick() -> int:
            steps[0] += 1
            return 0

        db.set_progress_handler(tick, 1)
        return db

    sqlite3.connect = counting  # type: ignore[assignment]
    try:
        with seamtape.replay(path, run=run, partial=True) as session:
            with session.httpx2_client() as client:
                client.post(URL, content=first)
    finally:
        sqlite3.connect = real
    return steps[0]


def test_opening_one_run_of_many_reads_what_that_run_needs(tmp_path: Path) -> None:
    def record(path: Path, tag: str) -> tuple[str, bytes]:
        body = json.dumps({"messages": [{"role": "user", "content": tag}]}).encode()
        with (
            seamtape.record(path, name=tag) as session,
            session.httpx2_client(transport=httpx2.MockTransport(_answer)) as client,
        ):
            for i in range(5):
                client.post(URL, content=body + b" " * i)
        return session.run_id, body

    small, many = tmp_path / "small.tape", tmp_path / "many.tape"
    small_run, first = record(small, "probe")
    for i in range(150):
        record(many, f"other {i}")
    many_run, _ = record(many, "probe")
    for i in range(150):
        _, latest = record(many, f"later {i}")
    cost_small = _vm_steps_to_first_response(small, small_run, first)
    cost_many = _vm_steps_to_first_response(many, many_run, first)
    assert cost_many <= 1.5 * cost_small, (cost_small, cost_many)
    # The latest run (no run named) is found through an index too.
    cost_latest = _vm_steps_to_first_response(many, None, latest)
    assert cost_latest <= 1.5 * _vm_steps_to_first_response(small, None, first)
