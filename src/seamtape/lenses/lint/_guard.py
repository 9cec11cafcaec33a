"""Guards: the lint rules run live, before each request leaves, as circuit breakers.

The session binds a ``Guards`` to its tape and run and hands the cursor the resulting
callable; the cursor calls it with each live request before sending it. A finding at or above
``trip_at`` stops the run there: the finding is written to the tape, the actions run, and
``GuardTripped`` is raised (a ``BaseException``, so no SDK retries it).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import tomllib
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seamtape import wire
from seamtape._errors import GuardTripped, LintConfigError, SeamtapeError
from seamtape.tape import Tape, blob_hash

from ._config import Config, load, resolve
from ._findings import SEVERITIES, Finding, rank
from ._lint import run_rules, turns_of
from ._trace import Turn, build


@dataclass(frozen=True)
class Trip:
    """What an action is told: the finding that tripped, the run, the held request's step."""

    finding: Finding
    tape: str
    run: str
    step: int

    def to_dict(self) -> dict[str, Any]:
        return {"tape": self.tape, "run": self.run, "step": self.step, **self.finding.to_dict()}


Action = Callable[[Trip], None]


def print_action(trip: Trip) -> None:
    """Print the finding to stderr."""
    sys.stderr.write(
        f"seamtape guard tripped at step {trip.step} of run {trip.run}: {trip.finding.line()}\n"
    )


class LogFile:
    """Append each trip to a file, one JSON object a line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __call__(self, trip: Trip) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(trip.to_dict(), sort_keys=True) + "\n")


class Webhook:
    """POST each trip as JSON to ``url``; a server that is down is reported, not raised.

    It uses the standard library's HTTP client on purpose: a client patched by an
    intercepting session would record the webhook call into the very run it reports on.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url, self.timeout = url, timeout

    def __call__(self, trip: Trip) -> None:
        data = json.dumps(trip.to_dict(), sort_keys=True).encode()
        request = urllib.request.Request(
            self.url, data=data, headers={"content-type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except OSError as exc:
            warnings.warn(f"guard webhook {self.url} failed: {exc}", RuntimeWarning, stacklevel=2)


def action(spec: str | Action) -> Action:
    """An action from its spec: ``print``, ``log:PATH``, ``webhook:URL``, or a callable."""
    if callable(spec):
        return spec
    kind, _, arg = spec.partition(":")
    if kind == "print" and not arg:
        return print_action
    if kind == "log" and arg:
        return LogFile(arg)
    if kind == "webhook" and arg:
        return Webhook(arg)
    raise LintConfigError(f"guard action {spec!r}: use print, log:PATH or webhook:URL")


class Guards:
    """Which rules guard a recording, at what severity they trip, and what a trip does.

    ``config`` is a lint configuration (a ``Config``, a mapping like the TOML table, or a
    file); ``actions`` are specs or callables (see ``action``); a finding at ``trip_at`` or
    worse stops the run.
    """

    def __init__(
        self,
        config: Config | Mapping[str, Any] | str | Path | None = None,
        *,
        actions: Sequence[str | Action] = ("print",),
        trip_at: str = "critical",
    ) -> None:
        if trip_at not in SEVERITIES:
            raise LintConfigError(
                f"trip_at must be one of {', '.join(SEVERITIES)}, not {trip_at!r}"
            )
        self.config = resolve(config)
        self.actions = [action(a) for a in actions]
        self.trip_at = trip_at

    def bind(self, tape: Tape, run_id: str) -> Breaker:
        """The callable a cursor calls before each live request of this run."""
        return Breaker(self, tape, run_id)


def guards_of(
    value: Guards | Mapping[str, Any] | str | Path | Iterable[Any] | None,
) -> Guards | None:
    """A ``Guards`` from what ``record(guards=...)`` was given."""
    if value is None or isinstance(value, Guards):
        return value
    if isinstance(value, Mapping | str | Path):
        return Guards(value)
    raise SeamtapeError("guards= takes a seamtape.Guards, a lint configuration mapping or a file")


def guards_from_specs(
    specs: Sequence[str], *, actions: Sequence[str] = ("print",), trip_at: str = "critical"
) -> Guards:
    """``Guards`` from command-line specs: ``RULE.PARAM=VALUE`` settings (the value in TOML,
    a bare word read as a string) and configuration files, later ones winning."""
    rules: dict[str, dict[str, Any]] = {}
    for spec in specs:
        target, eq, text = spec.partition("=")
        if not eq:
            for rule_id, settings in load(spec).rules.items():
                rules.setdefault(rule_id, {}).update(settings)
            continue
        rule_id, dot, param = target.strip().partition(".")
        if not dot or not param:
            raise LintConfigError(
                f"guard {spec!r}: use RULE.PARAM=VALUE, e.g. budget-cost.max_usd=0.5"
            )
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        rules.setdefault(rule_id, {})[param] = value
    return Guards({"rules": rules}, actions=actions, trip_at=trip_at)


class Breaker:
    """Evaluates the rules over the run so far plus the request about to leave."""

    def __init__(self, guards: Guards, tape: Tape, run_id: str) -> None:
        self.guards, self.tape, self.run = guards, tape, run_id
        self.started = tape.run(run_id).created
        self._lock = threading.Lock()
        self._turns_by_seq: dict[int, Turn] = {}  # each exchange decoded once, kept
        self._seen: set[str] = set()
        self.findings: list[Finding] = []  # every finding the guard has seen, in order

    def __call__(self, method: str, url: str, body: bytes) -> None:
        api = wire.detect(method, url)
        if api is None:
            return  # only model calls are guarded
        with self._lock:
            turns = self._turns()
            pending = self._pending(api, method, url, body, turns)
            trace = build(
                [*turns, pending], started=self.started, now=time.time(), run=self.run,
                complete=False,
            )  # fmt: skip
            fresh = [
                f for f in run_rules(trace, self.guards.config) if f.fingerprint not in self._seen
            ]
            self._seen.update(f.fingerprint for f in fresh)
            self.findings.extend(fresh)
            tripping = [f for f in fresh if rank(f.severity) >= rank(self.guards.trip_at)]
            if not tripping:
                return
            finding = max(tripping, key=lambda f: rank(f.severity))
            trip = Trip(finding, str(self.tape.path), self.run, pending.seq)
            self.tape.add_finding(self.run, {**finding.to_dict(), "guard": {"step": pending.seq}})
        for act in self.guards.actions:
            act(trip)
        raise GuardTripped(
            f"guard tripped before step {pending.seq} of run {self.run} was sent: "
            f"{finding.rule}: {finding.message}",
            run=self.run,
            step=pending.seq,
            finding=finding,
        )

    def _turns(self) -> list[Turn]:
        """The run's recorded exchanges as turns, each decoded once."""
        exchanges = self.tape.exchanges(self.run)
        new = [ex for ex in exchanges if ex.seq not in self._turns_by_seq]
        for turn in turns_of(self.tape, new):
            self._turns_by_seq[turn.seq] = turn
        return [self._turns_by_seq[seq] for seq in sorted(self._turns_by_seq)]

    def _pending(self, api: str, method: str, url: str, body: bytes, turns: list[Turn]) -> Turn:
        try:
            step: wire.Step | None = wire.decode_request(api, url, body)
        except wire.CodecError:
            step = None
        now = time.time()
        return Turn(
            seq=max((t.seq for t in turns), default=0) + 1,
            step=step,
            method=method,
            url=url,
            status=0,
            error=None,
            started=now,
            ended=now,
            request_hash=blob_hash(body),
            stream=bool(step and step.stream),
            pending=True,
        )
