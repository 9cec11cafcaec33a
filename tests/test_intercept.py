"""intercept=True: clients the agent builds itself, with no transport passed, join the session."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

import seamtape

CONSTRUCTORS = [httpx.Client, httpx.AsyncClient, httpx2.Client, httpx2.AsyncClient]


def _agent(url: str) -> list[Any]:
    """An agent that knows nothing of seamtape: it builds its own clients."""
    with httpx2.Client() as client:
        first = client.post(f"{url}/json", json={"step": "plan"})

    async def act() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(f"{url}/json", json={"step": "act"})

    second = asyncio.run(act())
    return [(r.status_code, r.headers.get("request-id"), r.content) for r in (first, second)]


def _exchanges(path: Path, run_id: str) -> list[tuple[str, str]]:
    with seamtape.Tape(path) as tape:
        return [(ex.method, ex.url) for ex in tape.exchanges(run_id)]


def test_clients_built_inside_the_block_are_recorded_and_replayed(origin, tape_path: Path) -> None:
    with seamtape.record(tape_path, intercept=True) as rec:
        recorded = _agent(origin.url)
    assert _exchanges(tape_path, rec.run_id) == [("POST", f"{origin.url}/json")] * 2
    url = origin.url
    origin.stop()

    with seamtape.replay(tape_path, intercept=True) as rep:
        replayed = _agent(url)
    assert replayed == recorded
    assert rep.stats == {"served": 2, "live": 0}
    assert rep.digest == rec.digest


def test_constructors_are_the_originals_again_after_the_block(tape_path: Path) -> None:
    originals = [cls.__init__ for cls in CONSTRUCTORS]
    with seamtape.record(tape_path, intercept=True):
        assert [cls.__init__ for cls in CONSTRUCTORS] != originals
    assert all(cls.__init__ is init for cls, init in zip(CONSTRUCTORS, originals, strict=True))

    with pytest.raises(RuntimeError), seamtape.record(tape_path, intercept=True):
        raise RuntimeError("the agent crashed")
    assert all(cls.__init__ is init for cls, init in zip(CONSTRUCTORS, originals, strict=True))


def test_a_client_built_in_another_thread_is_not_captured(origin, tape_path: Path) -> None:
    other: list[bytes] = []

    def unrelated_work() -> None:
        with httpx2.Client() as client:
            other.append(client.post(f"{origin.url}/json", json={"who": "thread"}).content)

    with seamtape.record(tape_path, intercept=True) as rec:
        worker = threading.Thread(target=unrelated_work)
        worker.start()
        worker.join()
        with httpx2.Client() as client:
            client.post(f"{origin.url}/json", json={"who": "agent"})

    assert b"thread" in other[0]  # it went to the server, live
    assert origin.count == 2
    with seamtape.Tape(tape_path) as tape:
        [ex] = tape.exchanges(rec.run_id)
        assert b"agent" in ex.request_bytes()


def test_nested_blocks_each_capture_their_own_clients(origin, tmp_path: Path) -> None:
    originals = [cls.__init__ for cls in CONSTRUCTORS]
    outer_path, inner_path = tmp_path / "outer.tape", tmp_path / "inner.tape"

    def post(text: str) -> None:
        with httpx2.Client() as client:
            client.post(f"{origin.url}/json", json={"from": text})

    with seamtape.record(outer_path, intercept=True) as outer:
        post("outer before")
        with seamtape.record(inner_path, intercept=True) as inner:
            post("inner")
        post("outer after")
    post("no block")

    def senders(path: Path, run_id: str) -> list[str]:
        with seamtape.Tape(path) as tape:
            return [json.loads(ex.request_bytes())["from"] for ex in tape.exchanges(run_id)]

    assert senders(outer_path, outer.run_id) == ["outer before", "outer after"]
    assert senders(inner_path, inner.run_id) == ["inner"]
    assert origin.count == 4
    assert all(cls.__init__ is init for cls, init in zip(CONSTRUCTORS, originals, strict=True))


def test_overlapping_blocks_closed_out_of_order_keep_the_open_one(origin, tmp_path: Path) -> None:
    originals = [cls.__init__ for cls in CONSTRUCTORS]
    first = seamtape.record(tmp_path / "first.tape", intercept=True)
    second = seamtape.record(tmp_path / "second.tape", intercept=True)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the earlier block ends while the later one is open
    try:
        with httpx2.Client() as client:
            client.post(f"{origin.url}/json", json={"while": "second is open"})
    finally:
        second.__exit__(None, None, None)
    assert all(cls.__init__ is init for cls, init in zip(CONSTRUCTORS, originals, strict=True))
    assert _exchanges(tmp_path / "second.tape", second.run_id) == [("POST", f"{origin.url}/json")]


def test_an_explicit_session_client_is_not_wrapped_twice(origin, tape_path: Path) -> None:
    with seamtape.record(tape_path, intercept=True) as rec, rec.httpx2_client() as client:
        client.post(f"{origin.url}/json", json={})
    assert origin.count == 1
    assert len(_exchanges(tape_path, rec.run_id)) == 1
