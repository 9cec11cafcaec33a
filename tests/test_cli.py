"""The `seamtape` command line, run as a user runs it: a subprocess, agents given as mod:fn."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import agents_for_cli
import seamtape

TESTS = Path(__file__).parent
EXIT_DIVERGED, EXIT_USAGE = 1, 2


def cli(
    *args: Any, url: str = "", question: str | None = None, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    """Run `seamtape ARGS` from the tests directory, where the agents module lives."""
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "SEAMTAPE_TEST_URL": url}
    env.pop("FORCE_COLOR", None)
    env.pop("SEAMTAPE_TEST_QUESTION", None)
    if question is not None:
        env["SEAMTAPE_TEST_QUESTION"] = question
    return subprocess.run(
        [sys.executable, "-m", "seamtape", *map(str, args)],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _digest(output: str) -> str:
    return re.search(r"digest ([0-9a-f]{16})", output).group(1)  # type: ignore[union-attr]


@pytest.fixture
def good_tape(origin, tape_path: Path, monkeypatch) -> Path:
    """A tape holding one finished run of agents_for_cli:ask, recorded in-process."""
    monkeypatch.setenv("SEAMTAPE_TEST_URL", origin.url)
    with seamtape.record(tape_path) as session:
        session.result = agents_for_cli.ask(session)
    return tape_path


def test_help_lists_the_commands() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("show", "record", "replay", "verify"):
        assert command in result.stdout


def _row(section: str, seq: int) -> str:
    """The line of ``show``'s table that lists step ``seq``."""
    rows = [
        line
        for line in section.splitlines()
        if re.match(rf"^[\s│┃|]*{seq}[\s│┃|]", line) and " POST " in line
    ]
    assert len(rows) == 1, section
    return rows[0]


@pytest.mark.parametrize("columns", [80, 200])
def test_show_lists_runs_and_their_exchanges(origin, tape_path: Path, columns: int) -> None:
    sizes: dict[str, list[tuple[int, int]]] = {}
    for name, questions in [("baseline", ["hi"]), ("candidate", ["hi", "and then?"])]:
        with seamtape.record(tape_path, name=name) as session, session.httpx2_client() as client:
            for q in questions:
                reply = client.post(f"{origin.url}/json?alt=sse", json={"q": q})
                sizes.setdefault(name, []).append((len(reply.request.content), len(reply.content)))
    with seamtape.Tape(tape_path) as tape:
        runs = tape.runs()

    result = cli("show", tape_path, columns=columns)  # piped, as into grep or a file
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for word in ("step", "method", "url", "status", "bytes", "ms"):
        assert word in out
    starts = [out.index(f"run {run.id} ({run.name})") for run in runs]
    assert starts == sorted(starts)
    for run, start, end in zip(runs, starts, [*starts[1:], len(out)], strict=True):
        section = out[start:end]
        assert origin.url in section
        for seq, (request_size, response_size) in enumerate(sizes[run.name], start=1):
            row = _row(section, seq)
            assert "/json?alt=sse" in row
            numbers = re.findall(r"\d+", row.replace("/json?alt=sse", ""))
            assert numbers[0] == str(seq) and "200" in numbers
            assert str(request_size) in numbers and str(response_size) in numbers
            assert re.search(r"\d+\s*[│┃|]?\s*$", row)  # milliseconds, last


def test_record_then_replay_offline_is_bit_exact(origin, tape_path: Path) -> None:
    recorded = cli("record", tape_path, "--agent", "agents_for_cli:ask", url=origin.url)
    assert recorded.returncode == 0, recorded.stderr
    assert origin.count == 2
    url = origin.url
    origin.stop()

    replayed = cli("replay", tape_path, "--agent", "agents_for_cli:ask", url=url)
    assert replayed.returncode == 0, replayed.stderr
    assert "bit-exact" in replayed.stdout
    assert _digest(replayed.stdout) == _digest(recorded.stdout)
    with seamtape.Tape(tape_path) as tape:
        run = tape.run()
    assert run.id in recorded.stdout and run.id in replayed.stdout
    assert run.digest.startswith(_digest(recorded.stdout))


def test_an_async_agent_records_and_replays(origin, tape_path: Path) -> None:
    recorded = cli("record", tape_path, "--agent", "agents_for_cli:ask_async", url=origin.url)
    assert recorded.returncode == 0, recorded.stderr
    assert origin.count == 1
    replayed = cli("replay", tape_path, "--agent", "agents_for_cli:ask_async", url=origin.url)
    assert replayed.returncode == 0, replayed.stderr
    assert "bit-exact" in replayed.stdout
    assert origin.count == 1  # replay made no request


def test_an_agent_that_asks_something_else_on_replay_exits_1(origin, tape_path: Path) -> None:
    agent = ("--agent", "agents_for_cli:ask")
    cli("record", tape_path, *agent, url=origin.url, question="what is 2 + 2?")
    tape_before = tape_path.read_bytes()

    result = cli("replay", tape_path, *agent, url=origin.url, question="what is 3 + 3?")
    assert result.returncode == EXIT_DIVERGED
    assert "Traceback" not in result.stdout + result.stderr
    assert "step 1" in result.stderr
    assert f"POST {origin.url}/json" in result.stderr
    assert "$.messages[0].content" in result.stderr
    assert "what is 2 + 2?" in result.stderr and "what is 3 + 3?" in result.stderr
    assert tape_path.read_bytes() == tape_before


def test_verify_passes_a_good_tape(good_tape: Path) -> None:
    result = cli("verify", good_tape)
    assert result.returncode == 0, result.stdout
    assert "problem" not in result.stdout + result.stderr
    assert "1 runs, 2 exchanges" in result.stdout


def _tamper(path: Path, sql: str) -> str:
    db = sqlite3.connect(path)
    (key,) = db.execute("SELECT response_body FROM exchange ORDER BY seq LIMIT 1").fetchone()
    (run_id,) = db.execute("SELECT id FROM run").fetchone()
    db.execute(sql, {"key": key, "run": run_id})
    db.commit()
    db.close()
    return key.hex()[:12] if "blob" in sql else run_id


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE blob SET data = CAST('{\"n\": 999}' AS BLOB) WHERE hash = :key",
        # a first hex digit other than the one there: the digest always changes
        "UPDATE run SET digest = (CASE WHEN substr(digest, 1, 1) = 'f' THEN 'e' ELSE 'f' END)"
        " || substr(digest, 2) WHERE id = :run",
    ],
    ids=["blob", "run-digest"],
)
def test_verify_names_tampering_and_exits_1(good_tape: Path, sql: str) -> None:
    culprit = _tamper(good_tape, sql)
    result = cli("verify", good_tape)
    assert result.returncode == EXIT_DIVERGED
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1
    assert culprit in problems[0]
    assert "Traceback" not in result.stdout + result.stderr


# -- mistakes: one clear line, exit 2, nothing changed ----------------------------------------


def _missing(tmp: Path, good: Path) -> Path:
    return tmp / "missing.tape"


def _truncated(tmp: Path, good: Path) -> Path:
    path = tmp / "truncated.tape"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return path


def _text(tmp: Path, good: Path) -> Path:
    path = tmp / "notes.tape"
    path.write_text("these are my notes, not a tape\n" * 20)
    return path


def _newer(tmp: Path, good: Path) -> Path:
    path = tmp / "newer.tape"
    path.write_bytes(good.read_bytes())
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = value + 1 WHERE key = 'schema_version'")
    db.commit()
    db.close()
    return path


def _good(tmp: Path, good: Path) -> Path:
    return good


ASK = ("--agent", "agents_for_cli:ask")
MISTAKES: dict[str, tuple[Callable[[Path, Path], Path], tuple[str, ...], str]] = {
    "missing tape": (_missing, ("replay", "{tape}", *ASK), "no such tape"),
    "truncated tape": (_truncated, ("verify", "{tape}"), "truncated"),
    "not sqlite": (_text, ("show", "{tape}"), "not an SQLite file"),
    "newer schema": (_newer, ("record", "{tape}", *ASK), "newer seamtape"),
    "unknown run": (_good, ("replay", "{tape}", *ASK, "--run", "nope"), "no run 'nope'"),
    "agent does not import": (
        _good,
        ("replay", "{tape}", "--agent", "no_such_module:agent"),
        "cannot import agent module 'no_such_module'",
    ),
    "agent not callable": (
        _good,
        ("record", "{tape}", "--agent", "agents_for_cli:nothing_here"),
        "no callable 'nothing_here'",
    ),
    "malformed agent spec": (
        _good,
        ("record", "{tape}", "--agent", "agents_for_cli"),
        "must look like package.module:function",
    ),
    "unserializable result on replay": (
        _good,
        ("replay", "{tape}", "--agent", "agents_for_cli:unserializable"),
        "not JSON-serializable",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_gives_one_error_line_and_exit_2(
    origin, good_tape: Path, tmp_path: Path, mistake: str
) -> None:
    make, args, message = MISTAKES[mistake]
    tape = make(tmp_path, good_tape)
    before = tape.read_bytes() if tape.exists() else None

    result = cli(*(str(tape) if a == "{tape}" else a for a in args), url=origin.url)

    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert (tape.read_bytes() if tape.exists() else None) == before


def test_recording_an_unserializable_result_keeps_the_runs_already_there(
    origin, good_tape: Path
) -> None:
    def runs() -> list[tuple[Any, ...]]:
        with seamtape.Tape(good_tape) as tape:
            return [(r.id, r.status, r.digest, r.exchanges, r.draws, r.result) for r in tape.runs()]

    before = runs()
    result = cli("record", good_tape, "--agent", "agents_for_cli:unserializable", url=origin.url)

    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not JSON-serializable" in lines[0]
    assert runs()[: len(before)] == before
    assert cli("verify", good_tape).returncode == 0
    replayed = cli("replay", good_tape, *ASK, "--run", before[0][0], url=origin.url)
    assert replayed.returncode == 0, replayed.stderr
    assert "bit-exact" in replayed.stdout
