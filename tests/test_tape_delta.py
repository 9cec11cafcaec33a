"""Request bodies that grow by appending are stored as deltas and still replay exactly."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import seamtape
from seamtape.tape import Tape, blob_hash

URL = "http://model.test/v1/messages"


def _record(path: Path, bodies: list[bytes]) -> str:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=b'{"ok": %d}' % len(request.content))

    # Storage round trips: bodies are stored as sent, even ones that look like keys.
    with (
        seamtape.record(path, redact=False) as s,
        s.httpx2_client(transport=httpx2.MockTransport(handler)) as c,
    ):
        for body in bodies:
            c.post(URL, content=body)
    return s.run_id


def _conversation(turns: int, words: int) -> list[bytes]:
    messages: list[dict[str, str]] = []
    bodies = []
    for i in range(turns):
        messages.append({"role": "user", "content": f"turn {i}: " + "lorem ipsum " * words})
        bodies.append(json.dumps({"model": "m", "messages": messages, "tools": ["t"] * 5}).encode())
    return bodies


def test_a_growing_conversation_is_stored_as_deltas(tmp_path: Path) -> None:
    bodies = _conversation(turns=12, words=500)
    path = tmp_path / "conv.tape"
    run = _record(path, bodies)
    db = sqlite3.connect(path)
    codecs = dict(db.execute("SELECT hash, codec FROM blob"))
    stored = db.execute("SELECT sum(length(data)) FROM blob").fetchone()[0]
    db.close()
    later = [codecs[blob_hash(b)] for b in bodies[1:]]
    deltas = [c for c in later if c in (2, 3)]  # a delta, its own bytes raw or zstd
    assert len(deltas) >= len(later) - 1  # nearly every later request is a delta
    assert stored < sum(len(b) for b in bodies) / 5

    with seamtape.replay(path, run=run) as r, r.httpx2_client() as c:
        for body in bodies:
            assert c.post(URL, content=body).json() == {"ok": len(body)}
    with Tape(path) as tape:
        assert [tape.blob(blob_hash(b)) for b in bodies] == bodies


def test_a_delta_body_that_differs_by_one_byte_diverges(tmp_path: Path) -> None:
    bodies = _conversation(turns=3, words=400)
    path = tmp_path / "conv.tape"
    _record(path, bodies)
    changed = bodies[2].replace(b"turn 2", b"turn X")
    with pytest.raises(seamtape.DivergenceError) as info:
        with seamtape.replay(path) as r, r.httpx2_client() as c:
            c.post(URL, content=bodies[0])
            c.post(URL, content=bodies[1])
            c.post(URL, content=changed)
    assert info.value.step == 3
    assert info.value.path == "$.messages[2].content"


# Random bytes recorded with redaction off now and then look like a key: the warning is right,
# and beside the point here.
@pytest.mark.filterwarnings("ignore::seamtape.SecretWarning")
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=6000), min_size=1, max_size=6),
    st.lists(st.integers(min_value=0, max_value=6000), min_size=6, max_size=6),
)
def test_any_sequence_of_bodies_round_trips_through_compaction(
    tmp_path_factory, pieces: list[bytes], cuts: list[int]
) -> None:
    # Bodies that share prefixes and suffixes with their predecessor, and ones that do not.
    bodies, previous = [], b"x" * 5000
    for piece, cut in zip(pieces, cuts, strict=False):
        body = previous[:cut] + piece + previous[cut:][: cut // 2]
        bodies.append(body)
        previous = body
    path = tmp_path_factory.mktemp("prop") / "p.tape"
    _record(path, bodies)
    with Tape(path) as tape:
        for body in bodies:
            assert tape.blob(blob_hash(body)) == body
            assert tape.body_equals(blob_hash(body), body)
    with seamtape.replay(path) as r, r.httpx2_client() as c:
        for body in bodies:
            assert c.post(URL, content=body).json() == {"ok": len(body)}


def test_a_base_removed_by_another_process_is_not_used_for_a_delta(tmp_path: Path) -> None:
    bodies = _conversation(turns=2, words=300)
    path = tmp_path / "gone.tape"
    with Tape(path, create=True) as tape:
        base = tape.put_blob(bodies[0])
        tape.remember(base, bodies[0])
        other = sqlite3.connect(path)  # meanwhile, another process drops the base
        with other:
            other.execute("DELETE FROM blob WHERE hash=?", (base,))
        other.close()
        key = tape.put_blob(bodies[1])
        assert tape.blob(key) == bodies[1]
    assert Tape(path).verify_blobs() == []
