"""`--json` on every command that reports: the shape docs/json.md documents, rounded numbers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest

if TYPE_CHECKING:
    from cli_in_process import Ran

pytest_plugins = ["cli_in_process"]  # the `cli` fixture

DOC = Path(__file__).resolve().parent.parent / "docs" / "json.md"
POLICY = "stochastic:seed=7,tools_plan=get_weather|find_hotel"


def documented_schemas() -> dict[str, dict[str, Any]]:
    """Each ``### `seamtape CMD --json` `` heading of docs/json.md and the schema under it."""
    text = DOC.read_text(encoding="utf-8")
    found = re.findall(r"### `seamtape ([a-z- ]+?) --json`.*?```json\n(.*?)```", text, re.S)
    return {command: json.loads(schema) for command, schema in found}


def floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in floats(v)]
    return []


@pytest.fixture
def tape(tmp_path: Path, cli: Callable[..., Ran]) -> Path:
    path = tmp_path / "trip.tape"
    assert (
        cli("record", path, "--agent", "first_hour_agents:trip", "--sim-policy", POLICY).returncode
        == 0
    )
    return path


def test_the_doc_covers_every_reporting_command() -> None:
    assert set(documented_schemas()) == {
        "show", "show --step", "record", "replay", "verify", "fork", "check-replay", "diff",
    }  # fmt: skip


def test_every_command_prints_its_documented_shape_with_rounded_numbers(
    tape: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    tests = Path(__file__).resolve().parent
    (tmp_path / "replay.toml").write_text(
        f'pythonpath = ["{tests.as_posix()}"]\n\n'
        '[[replay]]\ntape = "trip.tape"\nagent = "first_hour_agents:trip"\n'
    )
    forked = cli(
        "fork", tape, "--step", "2", "--agent", "first_hour_agents:trip", "--json",
        "--edit", '{"text": "No hotel.", "tool_calls": []}',
    )  # fmt: skip
    outputs = {
        "record": cli("record", tmp_path / "b.tape", "--agent", "first_hour_agents:trip", "--json"),
        "fork": forked,
        "show": cli("show", tape, "--json"),
        "show --step": cli("show", tape, "--step", "1", "--json"),
        "replay": cli("replay", tape, "--agent", "first_hour_agents:trip", "--json"),
        "verify": cli("verify", tape, "--json"),
        "check-replay": cli("check-replay", tmp_path, "--json"),
        "diff": cli("diff", tape, tmp_path / "b.tape", "--json"),
    }
    schemas = documented_schemas()
    for command, result in outputs.items():
        assert result.returncode in (0, 1), (command, result.stderr)
        data = json.loads(result.stdout)
        jsonschema.validate(data, schemas[command])
        for number in floats(data):
            assert float(f"{number:.6g}") == number, (command, number)
    assert json.loads(outputs["fork"].stdout)["sim_policy"] == POLICY
    costs = [r["cost_usd"] for r in json.loads(outputs["show"].stdout)["runs"]]
    assert all(c is not None and 0 < c < 0.01 for c in costs)
    assert json.loads(outputs["replay"].stdout)["bit_exact"] is True
    assert json.loads(outputs["check-replay"].stdout)["ok"] is True


def test_a_number_is_rounded_not_truncated_in_meaning() -> None:
    from seamtape.faces.cli._app import rounded

    assert rounded({"cost": 0.00034700000000000003, "n": [1.23456789, 3]}) == {
        "cost": 0.000347,
        "n": [1.23457, 3],
    }
