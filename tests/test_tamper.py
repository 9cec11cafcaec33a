"""A tape whose stored bytes were changed never replays as bit-exact.

The flips here change the ``id`` of the last response of the committed trip tape: the agent
never reads that field, so its result is the same and only the bytes served can tell.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import seamtape
from seamtape.tape import Tape, verify

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MESSAGE = "the tape's stored bytes do not match their hash: run `seamtape verify`"
EXIT_DIVERGED = 1


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "seamtape", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def last_response(tape: Path, run: str) -> tuple[int, bytes]:
    """(step, blob hash) of the run's last response."""
    with Tape(tape) as opened:
        ex = opened.exchanges(opened.run(run).id)[-1]
        return ex.seq, ex.response_body


def flip_response_id(tape: Path, run: str) -> int:
    """Change one byte of the last response's ``id`` in place, leaving its hash as it was."""
    step, digest = last_response(tape, run)
    with sqlite3.connect(tape) as db:
        codec, data = db.execute("SELECT codec, data FROM blob WHERE hash=?", (digest,)).fetchone()
        assert codec == 0, "the fixture's last response is stored raw"
        at = data.index(b'"id":"') + len(b'"id":"') + 4
        tampered = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
        db.execute("UPDATE blob SET data=? WHERE hash=?", (tampered, digest))
    return step


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_check_replay_fails_a_tampered_response_the_agent_ignores(corpus: Path) -> None:
    step = flip_response_id(corpus / "trip.tape", "trip-planner")
    assert not verify(corpus / "trip.tape").ok  # the control: the tape really is damaged

    done = cli("check-replay", str(corpus), cwd=corpus.parent)

    assert done.returncode == EXIT_DIVERGED, done.stdout + done.stderr
    assert MESSAGE in done.stdout
    assert f"step {step}" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert "3/4 tapes replay bit-exact" in done.stdout


def test_replay_fails_a_tampered_response_naming_the_run_and_step(corpus: Path) -> None:
    tape = corpus / "trip.tape"
    run = Tape(tape).run("trip-planner").id
    untouched = cli("replay", str(tape), "--agent", "fixtures.agents:trip_agent", cwd=corpus.parent)
    assert untouched.returncode == 0, untouched.stderr  # the control: it replays before the flip
    step = flip_response_id(tape, "trip-planner")

    done = cli("replay", str(tape), "--agent", "fixtures.agents:trip_agent", cwd=corpus.parent)

    assert done.returncode == EXIT_DIVERGED
    assert f"divergence in run {run}, step {step}: {MESSAGE}" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_digest_is_of_the_bytes_served(tmp_path: Path, origin: object) -> None:
    """Library use: the tampered bytes never reach the agent, whatever it does with them."""
    import httpx2

    tape = tmp_path / "t.tape"
    with seamtape.record(tape) as s, s.httpx2_client() as client:
        client.post(f"{origin.url}/json", content=b'{"n": 1}')  # type: ignore[attr-defined]
    step, digest = last_response(tape, s.run_id)
    with sqlite3.connect(tape) as db:
        db.execute("UPDATE blob SET data = data || x'20' WHERE hash=?", (digest,))

    with pytest.raises(seamtape.DivergenceError, match="do not match their hash") as caught:
        with seamtape.replay(tape) as r, r.httpx2_client() as client:
            with contextlib.suppress(httpx2.HTTPError):  # an agent that swallows errors
                client.post(f"{origin.url}/json", content=b'{"n": 1}')  # type: ignore[attr-defined]
    assert caught.value.step == step


def test_a_tampered_request_body_is_named_as_damage_not_as_a_changed_agent(
    tmp_path: Path, origin: object
) -> None:
    tape = tmp_path / "t.tape"
    body = b'{"question": "what is the weather?"}'
    with seamtape.record(tape) as s, s.httpx2_client() as client:
        client.post(f"{origin.url}/json", content=body)  # type: ignore[attr-defined]
    with Tape(tape) as opened:
        request = opened.exchanges(s.run_id)[0].request_body
    with sqlite3.connect(tape) as db:
        db.execute("UPDATE blob SET data=? WHERE hash=?", (body.replace(b"what", b"How"), request))

    with pytest.raises(seamtape.DivergenceError, match="do not match their hash"):
        with seamtape.replay(tape) as r, r.httpx2_client() as client:
            client.post(f"{origin.url}/json", content=body)  # type: ignore[attr-defined]
