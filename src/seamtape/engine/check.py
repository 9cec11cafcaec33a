"""The replay-check gate: every tape a manifest lists replays bit-exact, or CI fails.

A manifest (``replay.toml``) lists tapes, the run to replay in each, the agent entry point
that made it and, optionally, an oracle that grades the agent's result::

    pythonpath = [".."]            # where entry points import from, relative to this file

    [[replay]]
    tape = "trip.tape"             # relative to this file
    run = "trip-planner"           # id, id prefix or name; default the tape's latest run
    agent = "fixtures.agents:trip_agent"
    oracle = "fixtures.agents:answered"   # optional: result -> bool (or an outcome string)
    outcome = "success"            # optional: what the oracle must say (default: the run's
                                   # recorded outcome, else "success")

Each replay compares the agent's requests, its draws and its returned result with the
recording, and its digest with the recorded digest; nothing reaches the network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seamtape._agents import load_agent, replay_agent
from seamtape._errors import AgentError, DivergenceError, ManifestError, SeamtapeError
from seamtape._network import blocking
from seamtape.engine.blame import passed
from seamtape.lenses.lint import discover, lint
from seamtape.tape import Tape

__all__ = [
    "CheckReport",
    "ManifestError",
    "ReplayEntry",
    "TapeCheck",
    "check_replay",
    "configured_tape_dir",
]

MANIFEST = "replay.toml"
_KEYS = {"tape", "run", "agent", "oracle", "outcome"}


@dataclass
class ReplayEntry:
    """One line of the manifest, resolved: the tape exists, the run and entry points load."""

    tape: Path
    run: str  # the run's id
    label: str  # how the table and the JUnit report name it: tape[:run]
    steps: int
    agent: Callable[..., Any]
    oracle: Callable[[Any], Any] | None = None
    outcome: str | None = None  # what the oracle must say


@dataclass
class TapeCheck:
    """How one tape replayed."""

    label: str
    tape: str
    run: str
    steps: int
    ok: bool
    verdict: str  # "bit-exact", "diverged", "digest differs", "oracle", "error"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class CheckReport:
    manifest: Path
    checks: list[TapeCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[TapeCheck]:
        return [check for check in self.checks if not check.ok]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``seamtape check-replay --json``)."""
        return {
            "manifest": str(self.manifest),
            "ok": self.ok,
            "passed": len(self.checks) - len(self.failures),
            "total": len(self.checks),
            "seconds": self.seconds,
            "checks": [dataclasses.asdict(check) for check in self.checks],
        }


DEFAULT_TAPE_DIR = "tests/tapes"


def configured_tape_dir(project: str | os.PathLike[str] = ".") -> Path:
    """The project's tape folder: ``tape_dir`` in ``[tool.seamtape]`` of its pyproject.toml
    (as the pytest plugin reads it), else ``tests/tapes``; relative to the project."""
    root = Path(project)
    pyproject = root / "pyproject.toml"
    tape_dir: Any = DEFAULT_TAPE_DIR
    if pyproject.is_file():
        try:
            doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ManifestError(f"{pyproject}: cannot read [tool.seamtape]: {exc}") from None
        tape_dir = doc.get("tool", {}).get("seamtape", {}).get("tape_dir", DEFAULT_TAPE_DIR)
        if not isinstance(tape_dir, str):
            raise ManifestError(f"{pyproject}: [tool.seamtape] tape_dir must be a string")
    return root / tape_dir


def check_replay(
    path: str | os.PathLike[str] | None = None,
    *,
    junit: str | os.PathLike[str] | None = None,
    block_network: bool = True,
    lint: bool = False,
    update_lint_baseline: bool = False,
) -> CheckReport:
    """Replay every tape listed in the manifest at ``path`` (a directory holding
    ``replay.toml``, or the manifest itself; by default the project's configured tape folder,
    see ``configured_tape_dir``) and report each; ``junit`` writes JUnit XML.

    Raises ``ManifestError`` before replaying anything when the manifest is unusable.
    With ``block_network`` (the default) a replay that opens a real socket fails. With
    ``lint``, each run is also linted: a critical finding not in the baseline
    (``lint-baseline.json`` beside the manifest) fails, and so does any change in the set of
    findings' fingerprints against the baseline; ``update_lint_baseline`` rewrites it.
    """
    started = time.perf_counter()
    manifest = _manifest_path(Path(path) if path is not None else configured_tape_dir())
    entries = load_manifest(manifest)
    report = CheckReport(manifest)
    baseline = _read_baseline(manifest) if lint else {}
    fresh: dict[str, list[str]] = {}
    for entry in entries:
        check = _check(entry, block_network=block_network)
        if lint and check.ok:
            fresh[entry.label] = _lint_check(entry, check, baseline, update_lint_baseline)
        report.checks.append(check)
    if lint and update_lint_baseline:
        _write_baseline(manifest, {**baseline, **fresh})
    report.seconds = time.perf_counter() - started
    if junit is not None:
        write_junit(report, junit)
    return report


def _manifest_path(path: Path) -> Path:
    manifest = path / MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest (expected a directory with {MANIFEST})")
    return manifest


def load_manifest(manifest: Path) -> list[ReplayEntry]:
    """Read and resolve a manifest: every tape, run and entry point must exist."""
    try:
        doc = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{manifest}: cannot read the manifest: {exc}") from None
    base = manifest.parent
    for folder in _strings(doc.get("pythonpath", []), manifest, "pythonpath"):
        resolved = str((base / folder).resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)
    items = doc.get("replay")
    if not isinstance(items, list) or not items:
        raise ManifestError(f"{manifest}: no [[replay]] entries")
    entries = []
    for n, item in enumerate(items, start=1):
        where = f"{manifest}: [[replay]] entry {n}"
        if not isinstance(item, dict):
            raise ManifestError(f"{where}: not a table")
        unknown = sorted(set(item) - _KEYS)
        missing = sorted({"tape", "agent"} - set(item))
        if unknown or missing:
            problem = f"unknown key(s) {', '.join(unknown)}" if unknown else ""
            problem += ("; " if problem else "") + (
                f"missing {', '.join(missing)}" if missing else ""
            )
            raise ManifestError(f"{where}: {problem} (keys: {', '.join(sorted(_KEYS))})")
        if not all(isinstance(v, str) for v in item.values()):
            raise ManifestError(f"{where}: every value must be a string")
        tape = base / item["tape"]
        try:
            with Tape(tape) as opened:
                run = opened.run(item.get("run"))
        except SeamtapeError as exc:
            raise ManifestError(f"{where}: {exc}") from None
        try:
            agent = load_agent(item["agent"])
            oracle = load_agent(item["oracle"]) if "oracle" in item else None
        except AgentError as exc:
            raise ManifestError(f"{where}: {exc}") from None
        label = item["tape"] + (f":{item['run']}" if "run" in item else "")
        entries.append(
            ReplayEntry(
                tape=tape,
                run=run.id,
                label=label,
                steps=run.exchanges,
                agent=agent,
                oracle=oracle,
                outcome=(item.get("outcome") or run.outcome or "success") if oracle else None,
            )
        )
    return entries


def _strings(value: Any, manifest: Path, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{manifest}: {key} must be a list of strings")
    return value


def _check(entry: ReplayEntry, *, block_network: bool) -> TapeCheck:
    check = TapeCheck(entry.label, str(entry.tape), entry.run, entry.steps, False, "error")
    started = time.perf_counter()
    try:
        with blocking() if block_network else contextlib.nullcontext():
            replayed = replay_agent(entry.tape, entry.agent, run=entry.run)
        check.steps = replayed.served
        if not replayed.bit_exact:
            check.verdict = "digest differs"
            check.detail = (
                f"run {entry.run}: replayed digest {replayed.digest[:16]}, "
                f"recorded {(replayed.recorded_digest or '-')[:16]}"
            )
        else:
            graded = None if entry.oracle is None else _grade(entry.oracle, replayed.result)
            if graded != entry.outcome:
                check.verdict = "oracle"
                check.detail = f"the oracle graded the result {graded!r}, not {entry.outcome!r}"
            else:
                check.ok, check.verdict = True, "bit-exact"
    except DivergenceError as exc:
        check.verdict, check.detail = "diverged", str(exc)
    except Exception as exc:  # the agent's own failure is this tape's verdict, not the gate's
        check.detail = f"{type(exc).__name__}: {exc}"
    check.seconds = time.perf_counter() - started
    return check


LINT_BASELINE = "lint-baseline.json"


def _read_baseline(manifest: Path) -> dict[str, list[str]]:
    file = manifest.parent / LINT_BASELINE
    if not file.exists():
        return {}
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{file}: cannot read the lint baseline: {exc}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, list) for v in doc.values()):
        raise ManifestError(f"{file}: the lint baseline maps each tape label to a list")
    return {str(k): [str(x) for x in v] for k, v in doc.items()}


def _write_baseline(manifest: Path, baseline: dict[str, list[str]]) -> None:
    text = json.dumps(dict(sorted(baseline.items())), indent=2, sort_keys=True) + "\n"
    (manifest.parent / LINT_BASELINE).write_text(text, encoding="utf-8")


def _lint_check(
    entry: ReplayEntry, check: TapeCheck, baseline: dict[str, list[str]], updating: bool
) -> list[str]:
    """Lint the entry's run; fail the check on a new critical finding or fingerprint drift."""
    report = lint(entry.tape, run=entry.run, config=_lint_config(entry.tape))
    prints = sorted(f.fingerprint for f in report.findings)
    if updating:
        return prints
    known = set(baseline.get(entry.label, []))
    new_critical = [
        f for f in report.findings if f.severity == "critical" and f.fingerprint not in known
    ]
    if new_critical:
        check.ok, check.verdict = False, "lint"
        check.detail = "new critical finding: " + "; ".join(f.line() for f in new_critical)
    elif entry.label in baseline and set(prints) != known:
        added = [f.line() for f in report.findings if f.fingerprint not in known]
        gone = len(known - set(prints))
        check.ok, check.verdict = False, "lint drift"
        check.detail = (
            f"the findings' fingerprints drifted from {LINT_BASELINE}: {len(added)} new, "
            f"{gone} gone" + "".join(f"\n  {line}" for line in added)
        )
    return prints


def _lint_config(tape: Path) -> Any:
    return discover(tape.parent)


def _grade(oracle: Callable[[Any], Any], result: Any) -> str:
    """The outcome string for an oracle's answer; a bool maps as blame reads it."""
    verdict = oracle(result)
    if isinstance(verdict, str):
        return verdict
    return "success" if passed(verdict) else "failure"


def write_junit(report: CheckReport, path: str | os.PathLike[str]) -> None:
    """JUnit XML, one test case per tape, as CI systems read test results."""
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="seamtape check-replay",
        tests=str(len(report.checks)),
        failures=str(len(report.failures)),
        errors="0",
        skipped="0",
        time=f"{report.seconds:.3f}",
    )
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="seamtape.check-replay",
            name=check.label,
            time=f"{check.seconds:.3f}",
        )
        if not check.ok:
            first = check.detail.splitlines()[0] if check.detail else ""
            failure = ET.SubElement(case, "failure", message=f"{check.verdict}: {first}")
            failure.text = f"{check.tape} run {check.run}\n{check.detail}"
    ET.indent(suites)
    Path(path).write_bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n")
