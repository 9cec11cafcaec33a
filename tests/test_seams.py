"""Record through a real server on 127.0.0.1, stop it, replay: for httpx and httpx2, sync and
async, JSON and SSE."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import seamtape

LIBRARIES = ["httpx", "httpx2"]


def _client(session: seamtape.Session, library: str, is_async: bool) -> Any:
    prefix = "async_" if is_async else ""
    return getattr(session, f"{prefix}{library}_client")()


def _exchange_json(client: Any, url: str, payloads: list[dict[str, Any]]) -> list[Any]:
    out = []
    for p in payloads:
        r = client.post(f"{url}/json", json=p)
        out.append(
            (
                r.status_code,
                r.headers.get("request-id"),
                r.headers.get("x-ratelimit-remaining"),
                r.content,
            )
        )
    return out


async def _aexchange_json(client: Any, url: str, payloads: list[dict[str, Any]]) -> list[Any]:
    out = []
    for p in payloads:
        r = await client.post(f"{url}/json", json=p)
        out.append(
            (
                r.status_code,
                r.headers.get("request-id"),
                r.headers.get("x-ratelimit-remaining"),
                r.content,
            )
        )
    return out


def _stream(client: Any, url: str) -> list[bytes]:
    with client.stream("POST", f"{url}/sse", json={"n": 4}) as r:
        return [r.headers["content-type"].encode(), *r.iter_bytes()]


async def _astream(client: Any, url: str) -> list[bytes]:
    async with client.stream("POST", f"{url}/sse", json={"n": 4}) as r:
        return [r.headers["content-type"].encode()] + [c async for c in r.aiter_bytes()]


def _drive(session: seamtape.Session, library: str, is_async: bool, kind: str, url: str) -> Any:
    payloads = [{"q": i, "text": "hello " * i} for i in range(3)]
    client = _client(session, library, is_async)
    if not is_async:
        with client:
            return _exchange_json(client, url, payloads) if kind == "json" else _stream(client, url)

    async def main() -> Any:
        async with client:
            if kind == "json":
                return await _aexchange_json(client, url, payloads)
            return await _astream(client, url)

    return asyncio.run(main())


@pytest.mark.parametrize("kind", ["json", "sse"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("library", LIBRARIES)
def test_replay_after_the_server_is_gone(
    origin, tape_path: Path, library: str, is_async: bool, kind: str
) -> None:
    with seamtape.record(tape_path) as rec:
        recorded = _drive(rec, library, is_async, kind, origin.url)
    seen_by_server = origin.count
    url = origin.url
    origin.stop()

    with seamtape.replay(tape_path) as rep:
        replayed = _drive(rep, library, is_async, kind, url)

    assert replayed == recorded
    assert rep.digest == rec.digest
    assert rep.stats["served"] == seen_by_server
    if kind == "json":
        assert [r[1] for r in recorded] == [f"req_{i:04d}" for i in range(1, 4)]


@pytest.mark.parametrize("library", LIBRARIES)
def test_streams_pass_through_as_they_arrive(origin, tape_path: Path, library: str) -> None:
    """The agent reads the first event while the server still holds back the rest."""
    origin.gate = threading.Event()
    with seamtape.record(tape_path) as rec, _client(rec, library, False) as client:
        with client.stream("POST", f"{origin.url}/sse", json={"n": 3}) as r:
            chunks = r.iter_bytes()
            first = next(chunks)
            assert b'"i": 0' in first
            origin.gate.set()
            rest = b"".join(chunks)
    assert b'"i": 2' in rest
    with seamtape.replay(tape_path) as rep, _client(rep, library, False) as client:
        with client.stream("POST", f"{origin.url}/sse", json={"n": 3}) as r:
            assert list(r.iter_bytes()) == [first, *_split_like(rest)]


def _split_like(rest: bytes) -> list[bytes]:
    return [b"event: tick\n" + part for part in rest.split(b"event: tick\n") if part]


def test_concurrent_requests_each_get_their_own_response(origin, tape_path: Path) -> None:
    async def burst(session: seamtape.Session) -> list[Any]:
        async with session.async_httpx2_client() as client:
            responses = await asyncio.gather(
                *(client.post(f"{origin.url}/json", json={"who": i}) for i in range(5))
            )
            same = await asyncio.gather(
                *(client.post(f"{origin.url}/json", json={"who": "same"}) for _ in range(3))
            )
        return [r.json() for r in responses] + sorted(r.json()["n"] for r in same)

    with seamtape.record(tape_path) as rec:
        recorded = asyncio.run(burst(rec))
    origin.stop()
    with seamtape.replay(tape_path) as rep:
        replayed = asyncio.run(burst(rep))
    assert [r["echo"]["who"] for r in replayed[:5]] == list(range(5))
    assert replayed == recorded
    assert rep.digest == rec.digest


def test_sequential_requests_out_of_order_diverge(origin, tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec, rec.httpx2_client() as client:
        client.post(f"{origin.url}/json", json={"a": 1})
        client.post(f"{origin.url}/json", json={"a": 2})
    with pytest.raises(seamtape.DivergenceError) as info:
        with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
            client.post(f"{origin.url}/json", json={"a": 2})
    assert info.value.step == 1
    assert info.value.path == "$.a"
    assert (info.value.recorded, info.value.new) == (1, 2)


def test_divergence_names_run_step_request_and_path(origin, tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec, rec.httpx_client() as client:
        client.post(f"{origin.url}/json", json={"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(seamtape.DivergenceError) as info:
        with seamtape.replay(tape_path) as rep, rep.httpx_client() as client:
            client.post(
                f"{origin.url}/json", json={"messages": [{"role": "user", "content": "bye"}]}
            )
    text = str(info.value)
    assert rec.run_id in text and "step 1" in text
    assert f"POST {origin.url}/json" in text
    assert "$.messages[0].content" in text and "'hi'" in text and "'bye'" in text


def test_unrecorded_request_never_reaches_the_network(origin, tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec, rec.httpx2_client() as client:
        client.post(f"{origin.url}/json", json={})
    before = origin.count
    with pytest.raises(seamtape.DivergenceError, match="never recorded"):
        with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
            client.post(f"{origin.url}/json", json={})
            client.post(f"{origin.url}/json", json={})
    assert origin.count == before


def test_swallowed_divergence_is_raised_when_the_block_exits(origin, tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec, rec.httpx2_client() as client:
        client.post(f"{origin.url}/json", json={"a": 1})
    with pytest.raises(seamtape.DivergenceError, match=r"\$\.a"):
        with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
            with contextlib.suppress(BaseException):  # an agent that swallows everything
                client.post(f"{origin.url}/json", json={"a": 99})


def test_leftover_exchanges_diverge_unless_partial(origin, tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec, rec.httpx2_client() as client:
        client.post(f"{origin.url}/json", json={"a": 1})
        client.post(f"{origin.url}/json", json={"a": 2})
        rec.nondet.uuid4()
    with pytest.raises(seamtape.DivergenceError, match="1 recorded request"):
        with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
            client.post(f"{origin.url}/json", json={"a": 1})
    with pytest.raises(seamtape.DivergenceError, match="1 recorded draw"):
        with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
            client.post(f"{origin.url}/json", json={"a": 1})
            client.post(f"{origin.url}/json", json={"a": 2})
    with seamtape.replay(tape_path, partial=True) as rep, rep.httpx2_client() as client:
        assert client.post(f"{origin.url}/json", json={"a": 1}).json()["echo"] == {"a": 1}


def test_each_retry_attempt_is_its_own_exchange(origin, tape_path: Path) -> None:
    anthropic = pytest.importorskip("anthropic")

    def ask(session: seamtape.Session) -> tuple[int, int]:
        client = anthropic.Anthropic(
            api_key="sk-test",
            base_url=f"{origin.url}/flaky",
            http_client=session.httpx2_client(),
            max_retries=2,
        )
        raw = client.messages.with_raw_response.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        return raw.http_response.status_code, raw.retries_taken

    with seamtape.record(tape_path) as rec:
        assert ask(rec) == (200, 1)
    assert origin.count == 2
    origin.stop()
    with seamtape.replay(tape_path) as rep:
        assert ask(rep) == (200, 1)
    assert rep.stats == {"served": 2, "live": 0}
    assert rep.digest == rec.digest
    with seamtape.Tape(tape_path) as tape:
        assert [ex.status for ex in tape.exchanges(rec.run_id)] == [429, 200]
        headers = dict(tape.exchanges(rec.run_id)[0].response_headers)
        assert headers["retry-after"] == "0"


def test_divergence_fails_fast_through_the_sdk(origin, tape_path: Path, monkeypatch) -> None:
    anthropic = pytest.importorskip("anthropic")
    from seamtape._cursor import Cursor

    def ask(session: seamtape.Session, text: str) -> None:
        client = anthropic.Anthropic(
            api_key="sk-test", base_url=f"{origin.url}/json", http_client=session.httpx2_client()
        )
        client.messages.with_raw_response.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": text}]
        )

    with seamtape.record(tape_path) as rec:
        ask(rec, "hello")
    attempts = []
    begin = Cursor.begin
    monkeypatch.setattr(Cursor, "begin", lambda self, *a: attempts.append(1) or begin(self, *a))
    with pytest.raises(seamtape.DivergenceError) as info:
        with seamtape.replay(tape_path) as rep:
            ask(rep, "goodbye")
    assert len(attempts) == 1  # no SDK retry with backoff
    assert info.value.path == "$.messages[0].content"


def test_recording_keeps_what_the_agent_sees(origin, tape_path: Path) -> None:
    import httpx2

    with httpx2.Client() as bare:
        direct = bare.post(f"{origin.url}/json", json={"x": 1})
    with seamtape.record(tape_path) as rec, rec.httpx2_client() as client:
        through = client.post(f"{origin.url}/json", json={"x": 1})
    assert through.status_code == direct.status_code
    assert [k for k, _ in through.headers.raw] == [k for k, _ in direct.headers.raw]
    assert through.headers["request-id"] == "req_0002"
    assert json.loads(through.content)["echo"] == json.loads(direct.content)["echo"]


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_cut_stream_replays_as_the_same_error(origin, tape_path: Path, library: str) -> None:
    lib = importlib.import_module(library)

    def read(session: seamtape.Session) -> tuple[list[bytes], str]:
        got: list[bytes] = []
        with _client(session, library, False) as client:
            try:
                with client.stream("POST", f"{origin.url}/cut", content=b"{}") as r:
                    for chunk in r.iter_bytes():
                        got.append(chunk)
            except lib.TransportError as exc:
                return got, type(exc).__name__
        return got, "no error"

    with seamtape.record(tape_path) as rec:
        recorded = read(rec)
    origin.stop()
    with seamtape.replay(tape_path) as rep:
        replayed = read(rep)
    assert recorded[1] != "no error"
    assert replayed == recorded
