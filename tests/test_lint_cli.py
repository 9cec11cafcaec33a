"""`seamtape lint` as a user runs it: exit codes, formats, SARIF validity, configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lint_world import call, failing, record
from seamtape._errors import LintConfigError
from seamtape.lenses.lint import Config, discover, lint, schema

TESTS = Path(__file__).parent
SARIF_SCHEMA = TESTS / "data" / "sarif-2.1.0-rtm.5.json"


def cli(*args: Any, cwd: Path = TESTS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamtape", "lint", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lintcli")
    weather = call("get_weather", city="Lisbon")
    return {
        "clean": record(root, "anthropic", [[weather], "Sunny."], name="clean"),
        "warn": record(
            root, "openai", [[weather], "Lovely."], tools={"get_weather": failing()}, name="warn"
        ),
        "critical": record(root, "gemini", [[call("rm_rf", path="/")], "Done."], name="crit"),
    }


def test_exit_codes_follow_the_worst_severity(tapes: dict[str, Path]) -> None:
    clean = cli(tapes["clean"])
    assert clean.returncode == 0 and "0 critical, 0 warn" in clean.stdout
    assert cli(tapes["clean"], "--strict").returncode == 0
    warn = cli(tapes["warn"])
    assert warn.returncode == 0 and "silent-failure" in warn.stdout
    assert cli(tapes["warn"], "--strict").returncode == 1
    critical = cli(tapes["critical"])
    assert critical.returncode == 2 and "undeclared-tool" in critical.stdout


def test_usage_and_file_errors_never_read_as_findings(
    tapes: dict[str, Path], tmp_path: Path
) -> None:
    missing = cli(tmp_path / "missing.tape")
    assert missing.returncode == 66 and "no such tape" in missing.stderr
    not_a_tape = tmp_path / "notes.tape"
    not_a_tape.write_text("hello")
    assert cli(not_a_tape).returncode == 65
    assert cli(tapes["clean"], "--format", "xml").returncode == 64
    assert cli().returncode == 64
    assert cli(tapes["clean"], "--run", "nope").returncode == 64
    for result in (missing, cli(not_a_tape)):
        assert "Traceback" not in result.stderr


def test_a_malformed_config_is_one_error_naming_the_key(
    tapes: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "seamtape.toml"
    bad.write_text('[lint.rules.budget-cost]\nmax_usd = "lots"\n')
    result = cli(tapes["clean"], "--config", bad)
    assert result.returncode == 78
    assert "rules.budget-cost.max_usd" in result.stderr and len(result.stderr.splitlines()) == 1
    bad.write_text("[lint.rules.retry-storm]\nthreshhold = 2\n")
    result = cli(tapes["clean"], "--config", bad)
    assert result.returncode == 78 and "'rules.retry-storm.threshhold'" in result.stderr
    bad.write_text("[lint.rules.no-such-rule]\n")
    assert "'rules.no-such-rule'" in cli(tapes["clean"], "--config", bad).stderr


def test_config_is_found_in_pyproject_or_seamtape_toml(
    tapes: dict[str, Path], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.seamtape.lint.rules.tool-policy]\ndeny = ["get_weather"]\n'
    )
    assert discover(project / "sub")["tool-policy"]["deny"] == ["get_weather"]
    assert cli(tapes["clean"].resolve(), cwd=project / "sub").returncode == 2  # denied: critical
    (project / "sub" / "seamtape.toml").write_text(
        '[lint.rules.tool-policy]\nseverity = "warn"\ndeny = ["get_weather"]\n'
    )
    assert cli(tapes["clean"].resolve(), cwd=project / "sub").returncode == 0
    assert cli(tapes["clean"].resolve(), "--strict", cwd=project / "sub").returncode == 1


def test_config_schema_rejects_bad_values_in_the_library_too() -> None:
    with pytest.raises(LintConfigError, match="severity"):
        Config({"rules": {"loop-repeat": {"severity": "fatal"}}})
    assert schema()["properties"]["rules"]["additionalProperties"] is False


def test_json_output_carries_findings_and_a_fingerprint(tapes: dict[str, Path]) -> None:
    doc = json.loads(cli(tapes["warn"], "--format", "json").stdout)
    assert doc["counts"]["warn"] >= 1
    assert doc["fingerprint"] == lint(tapes["warn"]).fingerprint
    assert {f["rule"] for f in doc["findings"]} >= {"silent-failure", "failure-mode"}


def test_sarif_output_is_valid_sarif_2_1_0(tapes: dict[str, Path]) -> None:
    import jsonschema

    sarif_schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(sarif_schema)
    for name in ("clean", "warn", "critical"):
        doc = json.loads(cli(tapes[name], "--format", "sarif").stdout)
        errors = sorted(validator.iter_errors(doc), key=str)
        assert errors == [], errors[:3]
    doc = json.loads(cli(tapes["critical"], "--format", "sarif").stdout)
    (run,) = doc["runs"]
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["undeclared-tool"] == "error"
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    # the control: a document the schema must refuse
    broken = {**doc, "runs": [{**run, "results": [{"level": "fatal"}]}]}
    assert list(validator.iter_errors(broken))
