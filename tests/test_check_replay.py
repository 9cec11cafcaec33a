"""`seamtape check-replay`: the committed corpus replays bit-exact; a changed agent fails the gate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import seamtape
from seamtape.engine.check import ManifestError

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
EXIT_FAILED, EXIT_BAD_MANIFEST = 1, 2

# The corpus agent with one change: a lower budget in the question it asks first.
CHANGED_AGENT = """
import anthropic

from fixtures.agents import KEY, TRIP_TOOLS


def trip_agent(session):
    with anthropic.Anthropic(
        api_key=KEY, base_url=session.upstream, http_client=session.httpx2_client(), max_retries=0
    ) as client:
        client.messages.create(
            model="sim-claude",
            max_tokens=400,
            tools=TRIP_TOOLS,
            messages=[{"role": "user", "content": "Plan a weekend in Lisbon under 90 euros a night."}],
        )
    return {}


def never(result):
    return False
"""


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


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Copies of two corpus tapes and a changed agent module."""
    for name in ("trip.tape", "digest.tape"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    (tmp_path / "changed.py").write_text(CHANGED_AGENT)
    return tmp_path


def manifest(folder: Path, *entries: str, pythonpath: str = f'[".", "{ROOT}"]') -> Path:
    path = folder / "replay.toml"
    path.write_text(f"pythonpath = {pythonpath}\n" + "".join(f"\n[[replay]]\n{e}" for e in entries))
    return path


DIGEST = 'tape = "digest.tape"\nagent = "fixtures.agents:digest_agent"\n'


def test_the_committed_corpus_replays_bit_exact_and_leaves_the_tapes_untouched() -> None:
    tapes = sorted(FIXTURES.glob("*.tape"))
    before = [p.read_bytes() for p in tapes]

    report = seamtape.check_replay(FIXTURES)

    assert report.ok, [(c.label, c.detail) for c in report.failures]
    assert {c.label.split(":")[0] for c in report.checks} == {p.name for p in tapes}
    assert all(c.verdict == "bit-exact" and c.steps >= 1 for c in report.checks)
    # the gate's own clock spans every check it ran
    assert report.seconds >= sum(c.seconds for c in report.checks) > 0
    assert [p.read_bytes() for p in tapes] == before


def test_the_cli_gate_prints_a_table_and_writes_junit(tmp_path: Path) -> None:
    junit = tmp_path / "replay.xml"

    result = cli("check-replay", "fixtures", "--junit", str(junit), cwd=ROOT)

    assert result.returncode == 0, result.stdout + result.stderr
    for header in ("tape", "run", "steps", "result", "time"):
        assert header in result.stdout
    assert "trip.tape:trip-planner" in result.stdout and "bit-exact" in result.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) == len(list(FIXTURES.glob("*.tape")))


def test_a_changed_agent_fails_the_gate_with_exit_1_and_one_junit_failure(workdir: Path) -> None:
    manifest(
        workdir,
        'tape = "trip.tape"\nrun = "trip-planner"\nagent = "changed:trip_agent"\n',
        DIGEST,
    )
    junit = workdir / "replay.xml"

    result = cli("check-replay", ".", "--junit", str(junit), cwd=workdir)

    assert result.returncode == EXIT_FAILED, result.stdout + result.stderr
    assert "diverged" in result.stdout and "1/2 tapes replay bit-exact" in result.stdout
    assert "$.messages[0].content" in result.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    (failed,) = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed.get("name") == "trip.tape:trip-planner"
    failure = failed.find("failure")
    assert failure is not None and failure.get("message", "").startswith("diverged: ")


def test_an_oracle_that_disagrees_with_the_recording_fails_the_tape(workdir: Path) -> None:
    path = manifest(workdir, DIGEST + 'oracle = "changed:never"\n')

    report = seamtape.check_replay(path)

    (check,) = report.checks
    assert not report.ok and check.verdict == "oracle"
    assert "'failure', not 'success'" in check.detail


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('tape = "trip.tape"\n', "missing agent"),
        (DIGEST + 'agnet = "x:y"\n', "unknown key(s) agnet"),
        ('tape = "gone.tape"\nagent = "fixtures.agents:digest_agent"\n', "no such tape"),
        (DIGEST + 'run = "no-such-run"\n', "no run 'no-such-run'"),
        ('tape = "digest.tape"\nagent = "nowhere:agent"\n', "cannot import agent module"),
        ('tape = "digest.tape"\nagent = "fixtures.agents"\n', "must look like"),
        ('tape = [1]\nagent = "fixtures.agents:digest_agent"\n', "must be a string"),
        ("tape = 'unterminated\n", "cannot read the manifest"),
    ],
)
def test_a_bad_manifest_is_refused_before_anything_replays(
    workdir: Path, entry: str, problem: str
) -> None:
    path = manifest(workdir, entry)

    with pytest.raises(ManifestError, match=r"replay\.toml") as caught:
        seamtape.check_replay(path)

    assert problem in str(caught.value)


def test_a_bad_manifest_exits_2(workdir: Path, tmp_path: Path) -> None:
    manifest(workdir, 'tape = "trip.tape"\n')
    assert cli("check-replay", ".", cwd=workdir).returncode == EXIT_BAD_MANIFEST
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("check-replay", str(empty), cwd=tmp_path)
    assert result.returncode == EXIT_BAD_MANIFEST and "no such manifest" in result.stderr


TRIP = 'tape = "trip.tape"\nrun = "trip-planner"\nagent = "fixtures.agents:trip_agent"\n'


def test_lint_in_the_gate_fails_on_a_new_critical_finding_and_on_drift(workdir: Path) -> None:
    path = manifest(workdir, TRIP)
    assert seamtape.check_replay(path, lint=True).ok  # the corpus lints clean
    # a policy that the recorded trip breaks: a new critical finding fails its tape
    config = workdir / "seamtape.toml"
    config.write_text('[lint.rules.tool-policy]\ndeny = ["find_hotel"]\n')
    report = seamtape.check_replay(path, lint=True)
    (failed,) = report.failures
    assert failed.verdict == "lint" and "find_hotel" in failed.detail
    # accepted into the baseline, it passes; any change in what lint sees is drift
    assert seamtape.check_replay(path, lint=True, update_lint_baseline=True)
    assert (workdir / "lint-baseline.json").exists()
    assert seamtape.check_replay(path, lint=True).ok
    config.write_text(
        '[lint.rules.tool-policy]\ndeny = ["find_hotel"]\n'
        '[lint.rules.budget-calls]\nmax = 2\nseverity = "warn"\n'
    )
    (drifted,) = seamtape.check_replay(path, lint=True).failures
    assert drifted.verdict == "lint drift" and "budget-calls" in drifted.detail
    result = cli("check-replay", str(path), "--lint", cwd=workdir)
    assert result.returncode == EXIT_FAILED and "lint drift" in result.stdout
