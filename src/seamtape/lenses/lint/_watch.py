"""Following a tape that another process is recording: status and findings as they fire.

The watcher keeps one read connection to the tape and asks SQLite whether another
connection has committed since it last looked (``PRAGMA data_version``), so a quiet tape costs
one tiny query per tick; when the tape changed it re-reads the run and runs the rules.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seamtape._errors import UnknownRunError
from seamtape.tape import Tape

from ._config import Config, resolve
from ._findings import Finding
from ._lint import run_rules, trace_of
from ._rules import model_turns


@dataclass
class Status:
    """Where the watched run stands."""

    run: str
    state: str  # recording | complete | failed
    steps: int
    tokens: int
    cost_usd: float
    unpriced: int  # steps whose model has no price
    started: float  # when the run began (Unix time)
    last: float  # when its latest exchange ended

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the run began: to now while it records, to its last exchange after."""
        end = (time.time() if now is None else now) if self.state == "recording" else self.last
        return max(0.0, end - self.started)

    def line(self, now: float | None = None) -> str:
        cost = f"${self.cost_usd:.6f}" + ("+?" if self.unpriced else "")
        return (
            f"run {self.run} [{self.state}] steps {self.steps} · tokens {self.tokens} · "
            f"cost {cost} · elapsed {self.elapsed(now):.1f}s"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "state": self.state,
            "steps": self.steps,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "unpriced_steps": self.unpriced,
            "elapsed": round(self.elapsed(), 3),
        }


@dataclass
class Update:
    status: Status
    findings: list[Finding] = field(default_factory=list)  # new since the last update


class Watcher:
    """Reads a growing tape: ``poll()`` returns an ``Update`` when something was committed."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        run: str | None = None,
        config: Config | dict[str, Any] | str | Path | None = None,
    ) -> None:
        self.tape = Tape(path)
        self.config = resolve(config)
        self._run_arg = run
        self.run: str | None = None
        self._version: int | None = None
        self._seen: set[str] = set()
        self.findings: list[Finding] = []

    def close(self) -> None:
        self.tape.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def poll(self) -> Update | None:
        """An update if the tape changed since the last poll (the first poll always has one)."""
        version = self.tape.data_version()
        if version == self._version and self.run is not None:
            return None
        self._version = version
        if self.run is None:
            try:
                self.run = self.tape.run(self._run_arg).id
            except UnknownRunError:
                if self._run_arg is not None:
                    raise
                return None  # no run yet: the recorder has not begun
        info = self.tape.run(self.run)
        trace = trace_of(self.tape, self.run, now=time.time())
        found = run_rules(trace, self.config)
        found += [Finding.from_dict(d) for d in self.tape.findings(self.run)]
        fresh = [f for f in found if f.fingerprint not in self._seen]
        self._seen.update(f.fingerprint for f in fresh)
        self.findings.extend(fresh)
        turns = model_turns(trace)
        status = Status(
            run=self.run,
            state=info.status,
            steps=len(trace.turns),
            tokens=sum(_tokens(t.step) for t in turns if t.step is not None),
            cost_usd=sum(t.step.cost_usd or 0.0 for t in turns if t.step is not None),
            unpriced=sum(1 for t in turns if t.step is not None and t.step.cost_usd is None),
            started=info.created,
            last=max((t.ended for t in trace.turns), default=info.created),
        )
        return Update(status, fresh)

    def follow(
        self,
        on_update: Callable[[Update], Any],
        *,
        stop: threading.Event | None = None,
        interval: float = 0.1,
    ) -> Status | None:
        """Call ``on_update`` for each change until the run ends or ``stop`` is set.

        Returns the last status (None if no run ever appeared). ``on_update`` may return True
        to stop following.
        """
        stop = stop or threading.Event()
        last: Status | None = None
        while True:
            update = self.poll()
            if update is not None:
                last = update.status
                if on_update(update) is True or update.status.state != "recording":
                    return last
            if stop.wait(interval):
                return last


def _tokens(step: Any) -> int:
    u = step.usage
    return int(u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its parent's wait is missing
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def kill(pid: int, *, grace: float = 5.0) -> str:
    """SIGTERM, then SIGKILL if it is still alive after ``grace`` seconds; says which ended it."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "gone"
    waited = threading.Event()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return "SIGTERM"
        waited.wait(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "SIGTERM"
    return "SIGKILL"
