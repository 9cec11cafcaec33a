"""`seamtape watch` follows a tape that another process is recording, as it grows."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from seamtape._steps import steps_of
from seamtape.tape import Tape

TESTS = Path(__file__).parent
WAIT = 60  # seconds any one expected line may take before the test gives up


class Lines:
    """A process's stdout lines, read by a thread; ``until`` waits for a line that matches."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def until(self, match: Callable[[str], bool]) -> str:
        while True:
            line = self.queue.get(timeout=WAIT)
            if line is None:
                raise AssertionError(f"the stream ended first; it said: {self.seen}")
            self.seen.append(line)
            if match(line):
                return line


def _status(line: str) -> dict[str, Any] | None:
    doc = json.loads(line)
    return doc.get("status")


def _steps(n: int) -> Callable[[str], bool]:
    return lambda line: (_status(line) or {}).get("steps") == n


def start_recorder(tape: Path) -> tuple[subprocess.Popen[str], Lines]:
    recorder = subprocess.Popen(
        [sys.executable, str(TESTS / "watch_recorder.py"), str(tape)],
        cwd=TESTS, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines = Lines(recorder.stdout)  # type: ignore[arg-type]
    lines.until(lambda line: line == "ready")
    return recorder, lines


def start_watch(tape: Path, *args: str) -> tuple[subprocess.Popen[str], Lines]:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "seamtape", "watch", str(tape), "--json", *args],
        cwd=TESTS, stdout=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    return watcher, Lines(watcher.stdout)  # type: ignore[arg-type]


def step(recorder: subprocess.Popen[str], lines: Lines, n: int) -> None:
    assert recorder.stdin is not None
    recorder.stdin.write("go\n")
    recorder.stdin.flush()
    lines.until(lambda line: line == f"step {n}")


def test_watch_follows_a_live_run_to_its_end(tmp_path: Path) -> None:
    tape = tmp_path / "live.tape"
    recorder, said = start_recorder(tape)
    watcher, shown = start_watch(tape)
    try:
        first = _status(shown.until(_steps(0)))
        assert first is not None and first["state"] == "recording"
        for n in (1, 2):
            step(recorder, said, n)
            status = _status(shown.until(_steps(n)))
            assert status is not None and status["state"] == "recording"
        step(recorder, said, 3)  # the last step: the run may end before the watcher looks
        assert recorder.stdin is not None
        recorder.stdin.close()
        assert recorder.wait(WAIT) == 0
        final = _status(shown.until(lambda line: (_status(line) or {}).get("state") == "complete"))
        assert watcher.wait(WAIT) == 0
    finally:
        for process in (recorder, watcher):
            if process.poll() is None:
                process.kill()
    assert final is not None and final["steps"] == 3
    with Tape(tape) as opened:
        steps = [s for s in steps_of(opened, opened.run().id) if s is not None]
    tokens = sum(s.usage.input_tokens + s.usage.output_tokens for s in steps)
    assert final["tokens"] == tokens
    assert final["cost_usd"] == pytest.approx(sum(s.cost_usd or 0 for s in steps))
    assert final["elapsed"] >= first["elapsed"] >= 0


def test_watch_kills_the_recorder_on_a_critical_finding(tmp_path: Path) -> None:
    tape, config = tmp_path / "killed.tape", tmp_path / "seamtape.toml"
    config.write_text('[lint.rules.tool-policy]\ndeny = ["get_weather"]\n')
    recorder, said = start_recorder(tape)
    watcher, shown = start_watch(tape, "--config", str(config), "--kill", str(recorder.pid))
    try:
        shown.until(_steps(0))
        step(recorder, said, 1)  # search: allowed
        shown.until(_steps(1))
        assert not any("finding" in json.loads(line) for line in shown.seen)
        step(recorder, said, 2)  # the model calls get_weather: denied
        finding = json.loads(shown.until(lambda line: "finding" in json.loads(line)))["finding"]
        killed = json.loads(shown.until(lambda line: "killed" in json.loads(line)))
        assert recorder.wait(WAIT) == -signal.SIGTERM
        assert watcher.wait(WAIT) == 2
    finally:
        for process in (recorder, watcher):
            if process.poll() is None:
                process.kill()
    assert finding["rule"] == "tool-policy" and finding["steps"] == [2]
    assert killed == {"killed": recorder.pid, "signal": "SIGTERM"}
