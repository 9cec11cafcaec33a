"""intercept=True: clients the agent builds itself, with no transport passed, join the session."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

import seamtape
from seamtape._network import blocking

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


# -- a client that outlives its block follows the session in force when it sends ---------------


def _count(path: Path, run_id: str) -> int:
    return len(_exchanges(path, run_id))


def test_a_client_that_outlives_its_record_block_follows_the_replay(
    origin, tape_path: Path
) -> None:
    """The way frameworks cache clients: built once while recording, reused by the replay."""
    with seamtape.record(tape_path, intercept=True) as rec:
        cached = httpx2.Client()
        recorded = cached.post(f"{origin.url}/json", json={"step": "plan"}).content
    url = origin.url
    origin.stop()
    with blocking(), seamtape.replay(tape_path, intercept=True) as rep:
        replayed = cached.post(f"{url}/json", json={"step": "plan"}).content
    assert replayed == recorded
    assert rep.stats == {"served": 1, "live": 0}
    assert rep.digest == rec.digest


def test_an_async_client_that_outlives_its_block_follows_the_next_recording(
    origin, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.tape", tmp_path / "second.tape"

    async def post(client: httpx.AsyncClient, text: str) -> None:
        await client.post(f"{origin.url}/json", json={"from": text})

    async def both() -> tuple[str, str]:
        async with seamtape.record(first, intercept=True) as one:
            cached = httpx.AsyncClient()
            await post(cached, "first block")
        async with seamtape.record(second, intercept=True) as two:
            await post(cached, "second block")
        await cached.aclose()
        return one.run_id, two.run_id

    one, two = asyncio.run(both())
    with seamtape.Tape(first) as tape:
        assert [json.loads(ex.request_bytes())["from"] for ex in tape.exchanges(one)] == [
            "first block"
        ]
    with seamtape.Tape(second) as tape:
        assert [json.loads(ex.request_bytes())["from"] for ex in tape.exchanges(two)] == [
            "second block"
        ]


def test_outside_any_session_an_outliving_client_passes_through_untouched(
    origin, tape_path: Path
) -> None:
    """No session in force: the client's own transport, as if seamtape had never been there;
    the closed session's tape is never written."""
    with seamtape.record(tape_path, intercept=True) as rec:
        cached = httpx2.Client()
        cached.post(f"{origin.url}/json", json={"step": 1})
    response = cached.post(f"{origin.url}/json", json={"step": 2})
    assert response.status_code == 200 and json.loads(response.content)["echo"] == {"step": 2}
    assert origin.count == 2
    assert _count(tape_path, rec.run_id) == 1
    with seamtape.Tape(tape_path) as tape:
        assert tape.run(rec.run_id).digest == rec.digest


def test_an_outliving_client_under_replay_never_reaches_the_network(
    origin, tape_path: Path
) -> None:
    """A request the replay did not record is a divergence, even from a client built elsewhere."""
    with seamtape.record(tape_path, intercept=True):
        cached = httpx2.Client()
        cached.post(f"{origin.url}/json", json={"step": 1})
    with pytest.raises(seamtape.DivergenceError) as raised:
        with seamtape.replay(tape_path, intercept=True):
            cached.post(f"{origin.url}/json", json={"step": "changed"})
    assert raised.value.step == 1 and raised.value.path == "$.step"
    assert origin.count == 1


def test_a_sender_with_no_session_of_its_own_follows_the_open_block(
    origin, tape_path: Path
) -> None:
    """A worker thread (a tracing exporter's, a plain pool's) has no session in its context:
    the client goes through the block it was built in while that block is open."""
    with seamtape.record(tape_path, intercept=True) as rec:
        cached = httpx2.Client()
        worker = threading.Thread(
            target=lambda: cached.post(f"{origin.url}/json", json={"from": "worker"})
        )
        worker.start()
        worker.join()
    assert _count(tape_path, rec.run_id) == 1


def test_a_context_copied_inside_a_block_never_names_it_after_it_closes(
    origin, tape_path: Path
) -> None:
    """A kept event loop or task keeps a copy of the context it started in; once the block is
    closed, that copy must not send through it."""
    with seamtape.record(tape_path, intercept=True) as rec:
        cached = httpx2.Client()
        kept = contextvars.copy_context()
    response = kept.run(lambda: cached.post(f"{origin.url}/json", json={"late": True}))
    assert response.status_code == 200
    assert origin.count == 1
    assert _count(tape_path, rec.run_id) == 0


def test_tracing_sinks_are_never_recorded_and_never_sent_under_replay(
    origin, tape_path: Path
) -> None:
    with seamtape.record(tape_path, intercept=True) as rec:
        cached = httpx2.Client()
        cached.post(f"{origin.url}/json", json={"step": 1})
        traced = cached.post(f"{origin.url}/v1/traces/ingest", json={"data": []})
    assert traced.status_code == 404  # the origin's own answer: it went out, live
    assert origin.count == 2
    assert _exchanges(tape_path, rec.run_id) == [("POST", f"{origin.url}/json")]

    with seamtape.replay(tape_path, intercept=True) as rep:
        cached.post(f"{origin.url}/json", json={"step": 1})
        unsent = cached.post(f"{origin.url}/v1/traces/ingest", json={"data": []})
    assert unsent.status_code == 204
    assert origin.count == 2  # nothing was sent under replay
    assert rep.digest == rec.digest


def test_follow_joins_a_client_built_before_any_block(origin, tape_path: Path) -> None:
    early = seamtape.follow(httpx2.Client())
    before = early.post(f"{origin.url}/json", json={"when": "before"})  # no session: untouched
    with seamtape.record(tape_path, intercept=True) as rec:
        early.post(f"{origin.url}/json", json={"when": "inside"})
    assert before.status_code == 200 and origin.count == 2
    with seamtape.Tape(tape_path) as tape:
        [ex] = tape.exchanges(rec.run_id)
        assert json.loads(ex.request_bytes()) == {"when": "inside"}
    assert seamtape.follow(early) is early  # following already: unchanged


def test_follow_refuses_what_is_not_an_http_client() -> None:
    with pytest.raises(TypeError, match=r"seamtape.follow\(\) takes an httpx or httpx2 client"):
        seamtape.follow(object())
