"""The tape file: content-addressed bodies, WAL, schema versions, damaged files, crash safety,
and loading that never executes code."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seamtape
from seamtape.tape import SCHEMA_VERSION

Handler = Callable[[httpx2.Request], httpx2.Response]


def _echo(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, content=b"echo:" + request.content)


def _record(path: Path, bodies: list[bytes], handler: Handler = _echo, **kw: Any) -> Any:
    """Record one POST per body through a mock server; returns the closed session."""
    with (
        seamtape.record(path, **kw) as session,
        session.httpx2_client(transport=httpx2.MockTransport(handler)) as client,
    ):
        for i, body in enumerate(bodies):
            client.post(f"http://model.test/v1/step{i}", content=body)
    return session


def _query(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# -- storage ----------------------------------------------------------------------------------


def test_tape_is_an_sqlite_file_in_wal_mode(tape_path: Path) -> None:
    _record(tape_path, [b"{}"])
    assert _query(tape_path, "PRAGMA journal_mode") == [("wal",)]


def test_schema_version_is_stored_in_meta(tape_path: Path) -> None:
    _record(tape_path, [b"{}"])
    assert _query(tape_path, "SELECT value FROM meta WHERE key='schema_version'") == [
        (str(SCHEMA_VERSION),)
    ]


def test_blob_keys_are_the_raw_sha256_of_the_body(tape_path: Path) -> None:
    body = b'{"messages": [{"role": "user", "content": "hi"}]}'
    session = _record(tape_path, [body])
    [(request_key, response_key)] = _query(
        tape_path, "SELECT request_body, response_body FROM exchange WHERE run=?", session.run_id
    )
    assert request_key == hashlib.sha256(body).digest()
    assert len(request_key) == 32
    assert response_key == hashlib.sha256(b"echo:" + body).digest()
    with seamtape.Tape(tape_path) as tape:
        assert tape.put_blob(b"abc") == hashlib.sha256(b"abc").digest()


def test_identical_bodies_are_stored_once(tape_path: Path) -> None:
    bodies = [b'{"same": true}'] * 3 + [b'{"other": 1}']
    _record(tape_path, bodies)
    stored = {key for (key,) in _query(tape_path, "SELECT hash FROM blob")}
    distinct = {hashlib.sha256(b).digest() for b in bodies} | {
        hashlib.sha256(b"echo:" + b).digest() for b in bodies
    }
    assert stored == distinct
    assert _query(tape_path, "SELECT count(*) FROM exchange") == [(len(bodies),)]


def test_large_bodies_are_compressed_when_the_session_closes(tape_path: Path) -> None:
    big = json.dumps({"text": "the quick brown fox " * 3000}).encode()
    key = hashlib.sha256(big).digest()
    with (
        seamtape.record(tape_path) as session,
        session.httpx2_client(transport=httpx2.MockTransport(_echo)) as client,
    ):
        client.post("http://model.test/v1", content=big)
    [(codec, size, stored)] = _query(
        tape_path, "SELECT codec, size, length(data) FROM blob WHERE hash=?", key
    )
    assert codec != 0
    assert size == len(big)
    assert stored < len(big) // 4
    with seamtape.Tape(tape_path) as tape:
        assert tape.blob(key) == big
        [ex] = tape.exchanges(session.run_id)
        assert ex.request_bytes() == big
        assert ex.response_bytes() == b"echo:" + big


bodies = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda unit, n: unit * n, st.binary(min_size=1, max_size=24), st.integers(1, 400)),
)


@settings(max_examples=60, deadline=None)
@given(data=st.lists(bodies, min_size=1, max_size=4))
def test_any_bytes_round_trip_through_the_blob_store_and_compaction(data: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blobs.tape"
        with seamtape.Tape(path, create=True) as tape:
            keys = [tape.put_blob(d) for d in data]
            assert [tape.blob(k) for k in keys] == data
        with seamtape.Tape(path) as tape:  # closing compacted the large ones
            assert [tape.blob(k) for k in keys] == data
            assert tape.blobs(keys) == dict(zip(keys, data, strict=False))
            assert tape.verify_blobs() == []


@settings(max_examples=40, deadline=None)
@given(
    start=st.one_of(
        st.binary(min_size=1, max_size=600),
        st.builds(lambda seed, n: (seed * n)[:n], st.binary(min_size=1), st.integers(4000, 9000)),
    ),
    turns=st.lists(st.tuples(st.binary(max_size=300), st.booleans()), min_size=1, max_size=8),
)
def test_a_growing_conversation_reads_back_after_compaction(
    start: bytes, turns: list[tuple[bytes, bool]]
) -> None:
    """Each request repeats the last one and adds a turn (or edits its head): the shape the
    tape stores compactly, and must still read back byte for byte."""
    sent = [start]
    for added, edit_head in turns:
        sent.append((added + sent[-1][len(added) :]) if edit_head else sent[-1] + added)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chat.tape"
        session = _record(path, sent)
        with seamtape.Tape(path) as tape:
            exchanges = tape.exchanges(session.run_id)
            assert [ex.request_bytes() for ex in exchanges] == sent
            assert [ex.response_bytes() for ex in exchanges] == [b"echo:" + b for b in sent]
            assert tape.verify_blobs() == []
        with seamtape.replay(path) as rep, rep.httpx2_client() as client:
            replies = [
                client.post(f"http://model.test/v1/step{i}", content=b).content
                for i, b in enumerate(sent)
            ]
    assert replies == [b"echo:" + b for b in sent]
    assert rep.digest == session.digest


def test_a_request_that_comes_back_reads_back_after_compaction(tape_path: Path) -> None:
    """An agent asks A, then B (A with one setting changed), then A again."""
    a = json.dumps({"messages": [{"role": "user", "content": "x" * 5000}], "temperature": 0})
    b = a.replace('"temperature": 0', '"temperature": 1')
    sent = [a.encode(), b.encode(), a.encode()]
    session = _record(tape_path, sent)
    with seamtape.Tape(tape_path) as tape:
        assert [ex.request_bytes() for ex in tape.exchanges(session.run_id)] == sent
        assert tape.verify_blobs() == []
    with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
        for i, body in enumerate(sent):
            assert client.post(f"http://model.test/v1/step{i}", content=body).content == (
                b"echo:" + body
            )
    assert rep.digest == session.digest


header_names = st.from_regex(r"x-h-[a-z0-9\-]{1,12}", fullmatch=True)
# Header values as raw bytes: visible ASCII and latin-1, which the tape keeps as text.
header_values = st.binary(min_size=1, max_size=40).map(
    lambda b: bytes(c for c in b if 0x21 <= c <= 0x7E or c >= 0xA0) or b"v"
)
responses = st.tuples(
    st.integers(200, 599),
    st.lists(st.tuples(header_names, header_values), max_size=4),
    bodies,
)
steps = st.one_of(
    st.tuples(st.just("http"), st.sampled_from(["GET", "POST", "PUT"]), bodies, responses),
    st.tuples(st.just("draw"), st.sampled_from(["uuid4", "random", "time", "token_hex"])),
)


def _run_steps(session: seamtape.Session, plan: list[Any], client: Any) -> list[Any]:
    seen: list[Any] = []
    for i, step in enumerate(plan):
        if step[0] == "draw":
            seen.append(getattr(session.nondet, step[1])())
            continue
        _, method, body, _ = step
        r = client.request(method, f"http://model.test/v1/{i}?alt=sse", content=body)
        seen.append((r.status_code, r.headers.raw, r.read()))
    return seen


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(steps, min_size=1, max_size=6))
def test_any_recorded_sequence_replays_byte_identical(plan: list[Any]) -> None:
    replies = iter([s[3] for s in plan if s[0] == "http"])

    def server(request: httpx2.Request) -> httpx2.Response:
        status, headers, body = next(replies)
        return httpx2.Response(status, headers=headers, content=body)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.tape"
        with (
            seamtape.record(path) as rec,
            rec.httpx2_client(transport=httpx2.MockTransport(server)) as client,
        ):
            recorded = _run_steps(rec, plan, client)
        with seamtape.replay(path) as rep, rep.httpx2_client() as client:
            replayed = _run_steps(rep, plan, client)
    assert replayed == recorded
    assert rep.digest == rec.digest
    assert rep.stats == {"served": sum(s[0] == "http" for s in plan), "live": 0}


# -- the digest -------------------------------------------------------------------------------


def test_sdk_runs_that_ask_the_same_have_equal_digests(origin, tape_path: Path) -> None:
    """Per-call headers (idempotency keys, x-stainless-*) change; the digest does not."""
    anthropic = pytest.importorskip("anthropic")

    def ask(session: seamtape.Session, timeout: float) -> bytes:
        client = anthropic.Anthropic(
            api_key="x", base_url=f"{origin.url}/json", http_client=session.httpx2_client()
        )
        raw = client.messages.with_raw_response.create(
            model="claude-test",
            max_tokens=16,
            messages=[{"role": "user", "content": "what is 2 + 2?"}],
            timeout=timeout,
            extra_headers={"Idempotency-Key": f"stainless-python-retry-{uuid.uuid4()}"},
        )
        return raw.http_response.content

    with seamtape.record(tape_path) as first:
        first_reply = ask(first, timeout=600)
    origin.count = 0  # the server numbers its replies: let it answer the second run alike
    with seamtape.record(tape_path) as second:
        second_reply = ask(second, timeout=30)

    assert first_reply == second_reply
    with seamtape.Tape(tape_path) as tape:
        [a] = tape.exchanges(first.run_id)
        [b] = tape.exchanges(second.run_id)
    headers_a = {k.lower(): v for k, v in a.request_headers}
    headers_b = {k.lower(): v for k, v in b.request_headers}
    assert headers_a["idempotency-key"] != headers_b["idempotency-key"]
    assert headers_a["x-stainless-timeout"] != headers_b["x-stainless-timeout"]
    assert first.digest == second.digest

    origin.stop()
    with seamtape.replay(tape_path, run=first.run_id) as rep:
        assert ask(rep, timeout=5) == first_reply
    assert rep.digest == first.digest


def test_a_different_answer_gives_a_different_digest(tape_path: Path) -> None:
    def digest_of(answer: bytes) -> str:
        reply = httpx2.Response(200, content=answer)
        return _record(tape_path, [b"{}"], lambda request: reply).digest

    assert digest_of(b'{"text": "4"}') != digest_of(b'{"text": "5"}')
    assert digest_of(b'{"text": "4"}') == digest_of(b'{"text": "4"}')


# -- files that are not (good) tapes ---------------------------------------------------------


def _newer_schema(path: Path) -> None:
    _record(path, [b"{}"])
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()


def test_a_tape_from_a_newer_seamtape_is_refused(tape_path: Path) -> None:
    _newer_schema(tape_path)
    with pytest.raises(seamtape.TapeError, match="newer") as info:
        seamtape.Tape(tape_path)
    assert str(tape_path) in str(info.value)
    with pytest.raises(seamtape.TapeError, match="newer"), seamtape.replay(tape_path):
        pass
    with pytest.raises(seamtape.TapeError, match="newer"), seamtape.record(tape_path):
        pass


def _make_missing(path: Path) -> None:
    pass


def _make_empty(path: Path) -> None:
    path.write_bytes(b"")


def _make_text(path: Path) -> None:
    path.write_text("run,step,url\n1,1,https://api.example.com/v1/messages\n" * 10)


def _make_truncated(path: Path) -> None:
    _record(path, [b"x" * 3000, b"y" * 3000, os.urandom(20000)])
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(size // 2)


def _make_other_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (name TEXT, email TEXT)")
    db.execute("INSERT INTO contacts VALUES ('ada', 'ada@example.com')")
    db.commit()
    db.close()


BAD_FILES = {
    "missing": (_make_missing, "no such tape"),
    "empty": (_make_empty, "empty"),
    "text": (_make_text, "not an SQLite file"),
    "truncated": (_make_truncated, "truncated"),
    "other-sqlite": (_make_other_sqlite, "not a seamtape tape"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_bad_file_raises_tape_error_naming_it(tmp_path: Path, kind: str) -> None:
    make, what = BAD_FILES[kind]
    path = tmp_path / f"{kind}.tape"
    make(path)
    with pytest.raises(seamtape.TapeError) as info:
        seamtape.Tape(path)
    assert str(path) in str(info.value)
    assert what in str(info.value)
    with pytest.raises(seamtape.TapeError), seamtape.replay(path):
        pass


@pytest.mark.parametrize("kind", BAD_FILES)
def test_refusing_a_file_leaves_it_unchanged(tmp_path: Path, kind: str) -> None:
    make, _ = BAD_FILES[kind]
    path = tmp_path / f"{kind}.tape"
    make(path)
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(seamtape.TapeError):
        seamtape.Tape(path)
    after = path.read_bytes() if path.exists() else None
    assert after == before


# -- crash safety -----------------------------------------------------------------------------

RECORD_FOREVER = """
import sys
import seamtape

url, path = sys.argv[1], sys.argv[2]
with seamtape.record(path) as session, session.httpx2_client() as client:
    i = 0
    while True:
        i += 1
        reply = client.post(url + "/json", json={"i": i})
        print(reply.content.decode(), flush=True)
"""


def test_a_killed_recorder_keeps_every_exchange_it_completed(origin, tape_path: Path) -> None:
    completed = 3
    child = subprocess.Popen(
        [sys.executable, "-c", RECORD_FOREVER, origin.url, str(tape_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    seen = [child.stdout.readline() for _ in range(completed)]
    child.kill()  # SIGKILL: no finally blocks, no close
    child.wait()
    seen += child.stdout.readlines()
    child.stdout.close()
    seen = [line.rstrip("\n") for line in seen if line]
    assert len(seen) >= completed

    with seamtape.Tape(tape_path) as tape:
        run = tape.run()
        exchanges = tape.exchanges(run.id)
        assert run.status == "recording"
        # Every exchange the agent saw is there; at most one more, committed but not printed.
        assert len(seen) <= len(exchanges) <= len(seen) + 1
        for i, ex in enumerate(exchanges, start=1):
            assert ex.seq == i
            assert json.loads(ex.request_bytes()) == {"i": i}
            if i <= len(seen):
                assert ex.response_bytes().decode() == seen[i - 1]
        assert tape.verify_blobs() == []

    verify = subprocess.run(
        [sys.executable, "-m", "seamtape", "verify", str(tape_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"note: run {run.id}" in verify.stdout
    assert "never finished" in verify.stdout
    assert "problem" not in verify.stdout + verify.stderr


RECORD_THEN_DIE = """
import os, signal, sys
import seamtape

sys.setswitchinterval(1000)  # no other thread runs between the last response and the kill
url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with seamtape.record(path) as session, session.httpx2_client() as client:
    for i in range(1, n + 1):
        client.post(url + "/json", json={"i": i})
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_kill_right_after_a_response_keeps_that_exchange(origin, tape_path: Path) -> None:
    completed = 3
    child = subprocess.run(
        [sys.executable, "-c", RECORD_THEN_DIE, origin.url, str(tape_path), str(completed)],
        timeout=60,
    )
    assert child.returncode == -9
    assert origin.count == completed
    with seamtape.Tape(tape_path) as tape:
        exchanges = tape.exchanges(tape.run().id)
        assert [json.loads(ex.request_bytes()) for ex in exchanges] == [
            {"i": i} for i in range(1, completed + 1)
        ]


# -- loading never executes code --------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "raised"),
    [
        ("os.system", httpx2.TransportError),
        ("SystemExit", httpx2.TransportError),
        ("KeyboardInterrupt", httpx2.TransportError),
        ("builtins.exec", httpx2.TransportError),
        ("ConnectError", httpx2.ConnectError),  # control: the library's own class is found
    ],
)
def test_a_recorded_error_type_is_never_looked_up_as_code(
    tape_path: Path, error_type: str, raised: type[Exception]
) -> None:
    def drop(request: httpx2.Request) -> httpx2.Response:
        # A read error, not a refused connection: a recording that never connected is not kept.
        raise httpx2.ReadError("connection reset", request=request)

    with pytest.raises(httpx2.ReadError):
        _record(tape_path, [b"{}"], drop)
    db = sqlite3.connect(tape_path)
    db.execute("UPDATE exchange SET error=?", (json.dumps({"type": error_type, "message": "id"}),))
    db.commit()
    db.close()
    with (
        pytest.raises(httpx2.TransportError) as info,
        seamtape.replay(tape_path) as session,
        session.httpx2_client() as client,
    ):
        client.post("http://model.test/v1/step0", content=b"{}")
    assert type(info.value) is raised
    # a name that is not the library's own exception class is only ever quoted, never run
    assert str(info.value) == ("id" if raised is httpx2.ConnectError else f"{error_type}: id")


UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal", "shelve"}


def test_the_package_never_unpickles_or_evaluates() -> None:
    package = Path(seamtape.__file__).parent
    found = []
    for source in sorted(package.rglob("*.py")):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                names = [node.func.id] if node.func.id in ("eval", "exec") else []
            else:
                continue
            found += [f"{source.name}:{node.lineno} {n}" for n in names if n in UNSAFE_MODULES]
            found += [f"{source.name}:{node.lineno} {n}()" for n in names if n in ("eval", "exec")]
    assert found == []
    tape_source = "".join(p.read_text() for p in (package / "tape").glob("*.py"))
    assert "pickle" not in tape_source
    assert "eval(" not in tape_source
    assert "exec(" not in tape_source


# -- choosing a run ---------------------------------------------------------------------------


def test_an_unknown_run_id_raises_unknown_run_error(tape_path: Path) -> None:
    session = _record(tape_path, [b"{}"])
    with (
        pytest.raises(seamtape.UnknownRunError, match="nope") as info,
        seamtape.replay(tape_path, run="nope"),
    ):
        pass
    assert session.run_id in str(info.value)  # the message lists the runs there are
    with seamtape.Tape(tape_path) as tape, pytest.raises(seamtape.UnknownRunError):
        tape.run("ffffffffffffffff")


def test_an_empty_tape_has_no_run_to_replay(tape_path: Path) -> None:
    seamtape.Tape(tape_path, create=True).close()
    with pytest.raises(seamtape.UnknownRunError, match="no runs"), seamtape.replay(tape_path):
        pass


def test_runs_are_chosen_by_id_prefix_or_by_name(tape_path: Path) -> None:
    first = _record(tape_path, [b'{"q": 1}'], name="baseline")
    second = _record(tape_path, [b'{"q": 2}'], name="candidate")
    with seamtape.Tape(tape_path) as tape:
        assert tape.run(first.run_id[:8]).id == first.run_id
        assert tape.run(second.run_id).id == second.run_id
        assert tape.run("baseline").id == first.run_id
        assert tape.run("candidate").id == second.run_id
    with seamtape.replay(tape_path, run="baseline") as rep, rep.httpx2_client() as client:
        assert client.post("http://model.test/v1/step0", content=b'{"q": 1}').content == (
            b'echo:{"q": 1}'
        )
    assert rep.run_id == first.run_id
    assert rep.digest == first.digest


def test_replay_defaults_to_the_latest_run(tape_path: Path) -> None:
    _record(tape_path, [b'{"q": 1}'])
    latest = _record(tape_path, [b'{"q": 2}'])
    with seamtape.replay(tape_path) as rep, rep.httpx2_client() as client:
        client.post("http://model.test/v1/step0", content=b'{"q": 2}')
    assert rep.run_id == latest.run_id
    assert rep.digest == latest.digest


def test_a_copied_tape_replays_like_the_original(tape_path: Path, tmp_path: Path) -> None:
    session = _record(tape_path, [b"a" * 1000, b"b"])
    copy = tmp_path / "copy.tape"
    shutil.copy(tape_path, copy)
    with seamtape.replay(copy) as rep, rep.httpx2_client() as client:
        assert client.post("http://model.test/v1/step0", content=b"a" * 1000).content == (
            b"echo:" + b"a" * 1000
        )
        client.post("http://model.test/v1/step1", content=b"b")
    assert rep.digest == session.digest


def test_reading_an_exchange_after_its_tape_closed_is_a_clear_error(tape_path: Path) -> None:
    session = _record(tape_path, [b'{"n": 1}'])
    with seamtape.Tape(tape_path) as tape:
        [exchange] = tape.exchanges(session.run_id)
    with pytest.raises(seamtape.TapeError, match="the tape is closed"):
        exchange.response_bytes()


def test_a_wrong_argument_is_not_reported_as_a_damaged_tape(tape_path: Path) -> None:
    session = _record(tape_path, [b'{"n": 1}'])
    with seamtape.Tape(tape_path) as tape:
        info = tape.run(session.run_id)
        with pytest.raises(sqlite3.ProgrammingError):
            tape.run(info)  # type: ignore[arg-type]
        assert tape.run(session.run_id) == info  # and the handle still reads
