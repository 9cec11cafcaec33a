"""Damaged or strange tape content: one clear line and a distinct exit code from every command.

Each case starts from a copy of a committed tape (bytes recorded from the official SDKs) and
damages one stored body the way a disk, a hand edit or a bad copy would.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from seamtape.tape import Exchange, Tape, blob_hash

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
EXIT_DIVERGED, EXIT_USAGE = 1, 2
MESSAGES_URL = "http://127.0.0.1:9/v1/messages"


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


def _last_response(tape: Path) -> bytes:
    with Tape(tape) as opened:
        return opened.exchanges(opened.run("trip-planner").id)[-1].response_body


def _set_blob(tape: Path, digest: bytes, codec: int, data: object) -> None:
    with sqlite3.connect(tape) as db:
        db.execute("UPDATE blob SET codec=?, data=? WHERE hash=?", (codec, data, digest))


def zstd_frame_damaged(tape: Path) -> None:
    import zstandard

    digest = _last_response(tape)
    with sqlite3.connect(tape) as db:
        (data,) = db.execute("SELECT data FROM blob WHERE hash=?", (digest,)).fetchone()
    frame = bytearray(zstandard.ZstdCompressor().compress(data))
    frame[len(frame) // 2] ^= 0xFF
    _set_blob(tape, digest, 1, bytes(frame[:-3]))


def delta_its_own_base(tape: Path) -> None:
    import struct

    digest = _last_response(tape)
    _set_blob(tape, digest, 2, struct.pack(">32sQQ", digest, 10, 0) + b"x")


def delta_header_cut(tape: Path) -> None:
    _set_blob(tape, _last_response(tape), 2, b"\x00\x01")


def bytes_flipped(tape: Path) -> None:
    digest = _last_response(tape)
    with sqlite3.connect(tape) as db:
        (data,) = db.execute("SELECT data FROM blob WHERE hash=?", (digest,)).fetchone()
    at = data.index(b'"id":"') + len(b'"id":"') + 4
    _set_blob(tape, digest, 0, data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])


def stored_as_text(tape: Path) -> None:
    digest = _last_response(tape)
    with sqlite3.connect(tape) as db:
        db.execute("UPDATE blob SET data = CAST(data AS TEXT) WHERE hash=?", (digest,))


def blob_missing(tape: Path) -> None:
    with sqlite3.connect(tape) as db:
        db.execute("DELETE FROM blob WHERE hash=?", (_last_response(tape),))


DAMAGE = [
    zstd_frame_damaged,
    delta_its_own_base,
    delta_header_cut,
    bytes_flipped,
    stored_as_text,
    blob_missing,
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _one_clear_line(done: subprocess.CompletedProcess[str]) -> str:
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, out
    return lines[0]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_reading_commands_report_damage_in_one_line_and_exit_2(
    corpus: Path, damage: object
) -> None:
    tape = corpus / "trip.tape"
    damage(tape)  # type: ignore[operator]
    for args in (("show", str(tape)), ("diff", str(tape), str(tape)), ("textconv", str(tape))):
        done = cli(*args, cwd=corpus.parent)
        assert done.returncode == EXIT_USAGE, (args, done.stdout, done.stderr)
        line = _one_clear_line(done)
        assert line.startswith("error: ") and "trip.tape" in line, (args, line)


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_replay_meets_damage_as_a_divergence(corpus: Path, damage: object) -> None:
    tape = corpus / "trip.tape"
    damage(tape)  # type: ignore[operator]
    done = cli("replay", str(tape), "--agent", "fixtures.agents:trip_agent", cwd=corpus.parent)
    assert done.returncode == EXIT_DIVERGED, done.stdout + done.stderr
    line = _one_clear_line(done)
    assert line.startswith("divergence in run "), line
    assert "run `seamtape verify`" in done.stderr


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_verify_lists_the_damage(corpus: Path, damage: object) -> None:
    tape = corpus / "trip.tape"
    damage(tape)  # type: ignore[operator]
    done = cli("verify", str(tape), cwd=corpus.parent)
    assert done.returncode == EXIT_DIVERGED
    assert "problem:" in done.stdout and "Traceback" not in done.stdout + done.stderr


def _tape_with_response(path: Path, response: bytes) -> Path:
    """A tape whose one exchange holds ``response`` intact (its hash matches)."""
    request = json.dumps(
        {"model": "sim-claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    with Tape(path, create=True) as tape:
        run = tape.create_run("odd")
        row = Exchange(
            run=run,
            seq=1,
            batch=1,
            method="POST",
            url=MESSAGES_URL,
            request_headers_json="[]",
            request_body=blob_hash(request),
            status=200,
            response_headers_json='[["content-type", "application/json"]]',
            http_version="HTTP/1.1",
            reason="OK",
            response_body=blob_hash(response),
        )
        tape.add_exchange(row, request, response, [])
        tape.finish_run(run, status="complete", digest=None)
    return path


ODD_RESPONSES = {
    "model is a list": b'{"content":[],"model":["x"]}',
    "10,000-deep JSON": b"[" * 10_000 + b"]" * 10_000,
    "not JSON": b"\xff\xfe<html>",
}


@pytest.mark.parametrize("response", ODD_RESPONSES.values(), ids=ODD_RESPONSES.keys())
def test_show_and_diff_list_an_unreadable_response_as_raw_bytes(
    tmp_path: Path, response: bytes
) -> None:
    tape = _tape_with_response(tmp_path / "odd.tape", response)
    shown = cli("show", str(tape), cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "step 1: raw bytes: anthropic.messages: " in shown.stdout
    assert "Traceback" not in shown.stdout + shown.stderr
    diffed = cli("diff", str(tape), str(tape), cwd=tmp_path)
    assert diffed.returncode == 0 and "Traceback" not in diffed.stdout + diffed.stderr


def test_show_says_price_unknown_rather_than_zero(tmp_path: Path) -> None:
    response = json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-nonesuch-9",
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1200, "output_tokens": 30},
        }
    ).encode()
    tape = _tape_with_response(tmp_path / "unpriced.tape", response)
    shown = cli("show", str(tape), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "cost price unknown for claude-nonesuch-9" in shown.stdout
    assert "$0.000000" not in shown.stdout


@pytest.mark.parametrize("damage", [zstd_frame_damaged, bytes_flipped], ids=lambda f: f.__name__)
def test_fork_and_blame_report_damage_in_one_line(corpus: Path, damage: object) -> None:
    tape = corpus / "trip.tape"
    damage(tape)  # type: ignore[operator]
    agent = ("--agent", "fixtures.agents:trip_agent")
    for args in (
        ("fork", str(tape), "--step", "3", *agent, "--edit", '{"text": "no"}'),
        ("blame", str(tape), *agent, "--oracle", "fixtures.agents:answered"),
    ):
        done = cli(*args, cwd=corpus.parent)
        assert done.returncode in (EXIT_DIVERGED, EXIT_USAGE), (args, done.stdout, done.stderr)
        line = _one_clear_line(done)
        assert "run `seamtape verify`" in line, (args, line)
