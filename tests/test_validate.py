"""`seamtape validate` and `seamtape bench`: a quick end-to-end run, the controls' statistics,
and --check failing against a committed report with better numbers."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seamtape.engine.stats import wilson
from seamtape.faces.cli import app
from seamtape.proof import faults, validate

QUICK = validate.Config(
    fixtures=3,
    controls=1,
    position_steps=3,
    max_steps=5,
    max_trials=3,
    workers=1,
    permutations=20,
    position_permutations=200,
)


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("experiments")
    doc = validate.run_validate(QUICK)
    validate.save(doc, out, validate.markdown, "validate")
    return doc, out


def test_a_quick_validate_runs_end_to_end_and_writes_its_report(
    quick_report: tuple[dict, Path],
) -> None:
    doc, out = quick_report
    saved = json.loads((out / "validate.json").read_text())
    assert saved["config"] == json.loads(json.dumps(doc["config"]))
    assert set(saved["tails"]) == {"repeats", "sampled"}
    for part in saved["tails"].values():
        assert len(part["fixtures"]) == 3 and len(part["control_fixtures"]) == 1
        assert {r["root"] for r in part["position_fixtures"]} == {1, 2, 3}
        # The headline interval is the Wilson interval of the fixtures' own hits, recounted.
        hits = sum(r["hit1"] for r in part["fixtures"])
        top1 = part["overall"]["top1"]
        assert (top1["hits"], top1["n"]) == (hits, 3)
        assert top1["rate"] == pytest.approx(hits / 3)
        assert (top1["low"], top1["high"]) == pytest.approx(wilson(hits, 3, QUICK.confidence))
        # The live calls are the fixtures' own, summed.
        assert part["cost"]["live_calls"] == sum(r["live_calls"] for r in part["fixtures"])
        # Certification counts the roots that flipped at least 0.8 of the time.
        strong = [r for r in part["fixtures"] if (r["root_flip_rate"] or 0) >= 0.8]
        assert part["certified"]["n"] == len(strong)
        assert set(part["controls"]) == {"no_fault", "blind", "position", "ranking_agrees"}
        assert part["controls"]["ranking_agrees"] is True
    page = (out / "blame.md").read_text()
    assert "<!-- validate:begin -->" in page and doc["command"] in page
    assert "--fixtures 3" in doc["command"]


def test_every_broken_ranking_is_caught_by_some_control_and_blames_is_not() -> None:
    from seamtape.proof._rankings import BROKEN

    # Twenty fixtures where the allocation put most trials on the root (step 3 of 5), and
    # the counts are what blame saw: the trials-spent ranking is right on every one of them.
    rows, positions = [], []
    for i in range(20):
        root = 2 + i % 4
        trials = [[s, 12 if s == root else 2, 11 if s == root else 0] for s in range(1, 6)]
        rows.append({"kind": "corrupted_tool_output", "steps": 5, "root": root, "trials": trials})
    for root in range(2, 6):
        for _ in range(3):
            trials = [[s, 12 if s == root else 2, 11 if s == root else 0] for s in range(1, 6)]
            positions.append({"root": root, "trials": trials})
    summary = {"fixtures": rows, "position_fixtures": positions}
    table = validate._broken(QUICK, summary)
    assert table["blame (the real ranking)"]["caught_by"] == []
    for name in BROKEN:
        assert table[name]["caught_by"], name
    # The trials-spent ranking scores a perfect top-1: only the blind engine catches it.
    assert table["trials spent (flip-blind)"]["top1"] == 1.0
    assert "blind engine" in table["trials spent (flip-blind)"]["caught_by"]


def test_check_passes_against_itself_and_fails_against_better_numbers(
    quick_report: tuple[dict, Path],
) -> None:
    doc, _ = quick_report
    assert validate.check(doc, doc) == []
    better = copy.deepcopy(doc)
    better["tails"]["sampled"]["overall"]["top1"]["rate"] = 1.5
    better["tails"]["repeats"]["cost"]["ratio"] = -1.0
    problems = validate.check(doc, better)
    assert any("sampled tails: top-1" in p for p in problems)
    assert any("repeats tails: live calls" in p for p in problems)


def test_the_check_command_exits_1_against_a_doctored_committed_report(
    quick_report: tuple[dict, Path], tmp_path: Path
) -> None:
    doc, _ = quick_report
    doctored = copy.deepcopy(json.loads(json.dumps(doc)))
    doctored["config"].update(
        fixtures=1, controls=0, position_steps=3, max_steps=3, tails="repeats", max_trials=3
    )
    doctored["tails"] = {"repeats": doctored["tails"]["repeats"]}
    doctored["tails"]["repeats"]["overall"]["top1"]["rate"] = 1.5  # no real run can reach it
    (tmp_path / "validate.json").write_text(json.dumps(doctored))
    result = CliRunner().invoke(app, ["validate", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "repeats tails: top-1 fell" in result.output
    assert (
        json.loads((tmp_path / "validate.json").read_text()) == doctored
    )  # --check writes nothing


def test_position_test_is_one_when_precision_is_flat_and_small_when_it_is_not() -> None:
    flat = [(3, 0), (3, 0), (3, 0)]
    assert validate.chi_square_permutation(flat, 500, random.Random(0)) == 1.0
    skewed = [(8, 0), (8, 0), (0, 8), (0, 8)]
    assert validate.chi_square_permutation(skewed, 500, random.Random(0)) < 0.01


def test_validate_without_out_writes_nothing_and_check_needs_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "--check"])
    assert result.exit_code == 2 and "--out" in result.output
    quick = ["--fixtures", "1", "--controls", "0", "--position-steps", "3", "--max-steps", "3"]
    quick += ["--max-trials", "2", "--workers", "1", "--tails", "repeats"]
    result = CliRunner().invoke(app, ["bench", "--tails", "nonsense"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["validate", *quick])
    assert result.exit_code == 0, result.output
    assert "wrote nothing" in result.output
    assert list(tmp_path.iterdir()) == []  # no experiments/ in the working directory


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    page = tmp_path / "blame.md"
    validate.write_section(page, "validate", "first-body")
    validate.write_section(page, "bench", "bench-body")
    validate.write_section(page, "validate", "second-body")
    text = page.read_text()
    assert "second-body" in text and "bench-body" in text and "first-body" not in text
    assert text.index("second-body") < text.index("bench-body")


def test_bench_scenarios_fail_and_their_planted_steps_are_found(tmp_path: Path) -> None:
    from seamtape.proof import bench

    for scenario in bench.SCENARIOS:
        world, roles = bench._world(0, scenario)
        plan = faults.Design(0, scenario, world, bench.ACCOUNTS + 1, None)
        with faults.planted(plan, tmp_path) as fx:
            assert fx.failed, scenario
            where = bench._locate(fx.tape, fx.run_id, world, roles)
        expected = set(roles.values())
        if scenario == "root_and_echo":
            expected |= {"echo"}
            assert where["echo"] == where["root"] + 1
        assert set(where) == expected, (scenario, where)
