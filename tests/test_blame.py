"""Blame on a simulator-backed run whose root cause is known by construction (see blame_world)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import blame_world as world
import seamtape
from seamtape import sim
from seamtape.engine.blame import RunView, _plan_round, _Rules, _Tally, oracle_from
from seamtape.engine.mutations import MUTATIONS
from seamtape.tape import Tape
from seamtape.wire import Step, ToolCall

TESTS = Path(__file__).parent


@dataclass
class Recorded:
    tape: Path
    run_id: str
    server: sim.Simulator


@pytest.fixture
def failed_run(tmp_path: Path) -> Iterator[Recorded]:
    """The world's run, recorded against a fresh simulator that stays up for the live tails."""
    with sim.serve(world.SummitModel()) as server:
        yield _record(tmp_path / "summit.tape", server)


def _record(tape: Path, server: sim.Simulator) -> Recorded:
    with seamtape.record(tape, upstream=server.base_url) as rec:
        rec.result = world.agent(rec)
    assert not world.oracle(rec.result) and rec.stats["live"] == world.STEPS
    return Recorded(tape, rec.run_id, server)


def _shape(report: seamtape.BlameReport) -> list[tuple[Any, ...]]:
    return [(s.step, s.trials, s.flips, s.skipped_identical, s.verdict) for s in report.steps]


# --- finding the cause ------------------------------------------------------------------------


def test_blame_ranks_the_planted_cause_first_for_a_third_of_uniform_cost(
    failed_run: Recorded,
) -> None:
    events: list[Any] = []
    report = seamtape.blame(
        failed_run.tape,
        failed_run.run_id,
        agent=world.agent,
        oracle=world.oracle,
        workers=1,
        progress=events.append,
    )
    assert report.parent_success is False
    assert report.top(1) == [world.CAUSE]
    cause = report.step(world.CAUSE)
    assert cause.verdict == "cause" and cause.cs_low > report.threshold
    assert cause.low <= cause.flip_rate <= cause.high
    others = [s for s in report.steps if s.step != world.CAUSE]
    assert all(s.flips == 0 and s.trials >= 2 and s.verdict != "cause" for s in others)
    assert report.stopped == "settled"

    # Spend: metered per step, summed, and well under uniform sampling's.
    assert report.live_calls == sum(s.live_calls for s in report.steps)
    assert report.cost_usd == pytest.approx(sum(s.cost_usd for s in report.steps))
    assert report.uniform_calls == 10 * sum(range(1, world.STEPS + 1))
    assert report.live_calls <= report.uniform_calls / 3
    assert report.estimated_min_calls == 2 * sum(range(1, world.STEPS + 1))

    # Progress: one event before any trial, carrying the estimate; then one per attempt.
    assert events[0].done == 0 and events[0].estimate.max_calls == report.uniform_calls
    assert events[-1].done == report.trials and events[-1].cost_usd == report.cost_usd
    assert all(e.done <= e.planned for e in events)

    # Each trial is a fork, with its lineage, in the scratch tape beside the one blamed; the
    # blamed tape gains no run, so replaying it never picks a trial.
    assert Path(report.trials_tape) == failed_run.tape.with_name("summit.trials.tape")
    with Tape(report.trials_tape) as t:
        forks = [r for r in t.runs() if r.parent == report.run_id]
    with Tape(failed_run.tape) as t:
        assert [r.id for r in t.runs()] == [report.run_id]
    assert len(forks) == report.trials
    assert {r.fork_step for r in forks} == set(range(1, world.STEPS + 1))
    assert json.loads(report.to_json())["steps"][0]["step"] == world.CAUSE


def test_process_pool_and_dask_give_the_serial_ranking(tmp_path: Path) -> None:
    """Same seed, same world, three executors: the same trials, flips and ranking."""
    distributed = pytest.importorskip("distributed")
    reports = {}
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        runs: dict[str, dict[str, Any]] = {
            "serial": {"workers": 1},
            "processes": {"workers": 2, "agent": "blame_world:agent"},
            "dask": {"executor": client},
        }
        for name, options in runs.items():
            with sim.serve(world.SummitModel()) as server:
                recorded = _record(tmp_path / f"{name}.tape", server)
                options = {"agent": world.agent, "oracle": "$.answer ~= Lisbon", **options}
                reports[name] = seamtape.blame(recorded.tape, recorded.run_id, seed=3, **options)
    assert reports["serial"].top(1) == [world.CAUSE]
    assert _shape(reports["processes"]) == _shape(reports["serial"])
    assert _shape(reports["dask"]) == _shape(reports["serial"])


def test_any_executor_runs_trials(failed_run: Recorded) -> None:
    with ThreadPoolExecutor(2) as pool:
        threaded = seamtape.blame(
            failed_run.tape, agent=world.agent, oracle=world.oracle, executor=pool, seed=3
        )
    assert threaded.top(1) == [world.CAUSE]


def test_worker_processes_need_importable_agents(failed_run: Recorded) -> None:
    with pytest.raises(seamtape.SeamtapeError, match="module level"):
        seamtape.blame(
            failed_run.tape,
            agent=lambda session: world.agent(session),
            oracle=world.oracle,
            workers=2,
            steps=[world.STEPS],
        )


# --- budget -----------------------------------------------------------------------------------


def test_budget_stops_hard_and_unmeasured_steps_say_so(failed_run: Recorded) -> None:
    probe = seamtape.blame(
        failed_run.tape, agent=world.agent, oracle=world.oracle, workers=1, budget=0.0
    )
    assert probe.stopped == "budget" and probe.live_calls == 0 and probe.cost_usd == 0
    assert {s.verdict for s in probe.steps} == {"unmeasured"}
    assert all("budget" in s.note for s in probe.steps)

    budget = probe.estimated_min_cost / 3  # not even one round at every step
    report = seamtape.blame(
        failed_run.tape, agent=world.agent, oracle=world.oracle, workers=1, budget=budget
    )
    assert report.stopped == "budget"
    assert 0 < report.cost_usd <= budget
    unmeasured = [s for s in report.steps if s.trials == 0]
    assert unmeasured and all(s.verdict == "unmeasured" for s in unmeasured)
    assert report.steps[-len(unmeasured) :] == unmeasured  # ranked after every measured step
    assert all(s.verdict != "not the cause" for s in unmeasured)


# --- identical perturbations ------------------------------------------------------------------


def test_a_resample_identical_to_the_recording_is_not_a_trial(failed_run: Recorded) -> None:
    # A simulator that never saw the run answers the first resample greedily: the same bytes.
    with sim.serve(world.SummitModel()) as fresh:
        report = seamtape.blame(
            failed_run.tape,
            agent=world.agent,
            oracle=world.oracle,
            upstream=fresh.base_url,
            workers=1,
            steps=[1],
            max_trials=3,
            estimator="flip_rate",  # no tail reference: step 1's runs alone
        )
    [step] = report.steps
    # The identical resample is not an attempt: the cap of 3 counts real trials only.
    assert step.skipped_identical == 1 and step.trials == 3
    with Tape(report.trials_tape) as t:
        assert len([r for r in t.runs() if r.parent == report.run_id]) == 4  # all four ran


def test_mutations_that_change_nothing_or_do_not_apply_are_not_trials(
    failed_run: Recorded,
) -> None:
    same = seamtape.blame(
        failed_run.tape,
        agent=world.agent,
        oracle=world.oracle,
        workers=1,
        perturb=lambda step: {"text": step.text},  # re-encodes to the recorded bytes
    )
    assert same.live_calls == 0 and same.stopped == "settled"
    assert all(s.verdict == "unmeasured" and s.skipped_identical == 1 for s in same.steps)

    emptied = seamtape.blame(
        failed_run.tape, agent=world.agent, oracle=world.oracle, workers=1, perturb="empty_text"
    )
    last = emptied.step(world.STEPS)  # only the answer has text; the reads are tool calls
    assert last.trials > 0 and last.verdict == "not the cause"
    assert all(
        s.verdict == "unmeasured" and "does not apply" in s.note
        for s in emptied.steps
        if s.step != world.STEPS
    )
    assert emptied.perturb == "empty_text"


# --- failing agents ---------------------------------------------------------------------------


def crashes_on_lisbon(session: Any) -> Any:
    """The world's agent, except that it raises when it would have answered Lisbon."""
    result = world.agent(session)
    if world.oracle(result):
        raise RuntimeError("crashed")
    return result


def test_a_crashing_tail_is_a_failure_not_an_error(failed_run: Recorded) -> None:
    report = seamtape.blame(
        failed_run.tape,
        agent=crashes_on_lisbon,
        oracle=world.oracle,
        workers=1,
        steps=[world.CAUSE],
        max_trials=3,
    )
    [step] = report.steps
    assert step.errors > 0 and step.flips == 0  # a crash fails, like the parent


def test_an_agent_that_diverges_in_the_prefix_stops_blame(failed_run: Recorded) -> None:
    def asks_something_else(session: Any) -> Any:
        session.httpx2_client().post(f"{session.upstream}/v1/messages", json={"hello": 1})

    with pytest.raises(seamtape.SeamtapeError, match="blame stopped"):
        seamtape.blame(
            failed_run.tape, agent=asks_something_else, oracle=world.oracle, workers=1, steps=[3]
        )


# --- oracles, mutations, allocation -----------------------------------------------------------


def test_oracle_shorthands() -> None:
    result = {
        "answer": "The summit is in Lisbon.",
        "ok": True,
        "n": 3,
        "items": [{"a": None}],
        "tag": "summit:lisbon",
    }
    yes = [
        "$.answer ~= Lisbon",
        "$.ok == true",
        "$.n != 4",
        "$.n == 3",
        '$["answer"] ~= ^The',
        "$.items[0]",
        "$.ok",
        "Lis+bon",
        "re:summit:lisbon",  # without re: it would name a function to import
        "$.answer == The summit is in Lisbon.",
    ]
    no = ["$.answer ~= Paris", "$.ok == false", "$.missing != 1", "$.items[0].a", "Paris"]
    for test in yes:
        assert oracle_from(test)(result, None), test
    for test in no:
        assert not oracle_from(test)(result, None), test
    assert oracle_from("blame_world:oracle")(result, None)
    with pytest.raises(seamtape.SeamtapeError, match="JSON-path"):
        oracle_from("$.a ==")
    with pytest.raises(seamtape.SeamtapeError, match="regex"):
        oracle_from("(unclosed")


def test_a_two_argument_oracle_sees_the_run(failed_run: Recorded) -> None:
    seen: list[RunView] = []

    def judge(result: Any, run: RunView) -> bool:
        seen.append(run)
        return len(run.steps()) == world.STEPS and run.info().has_result

    report = seamtape.blame(
        failed_run.tape, agent=world.agent, oracle=judge, workers=1, steps=[world.STEPS]
    )
    assert report.parent_success and seen[0].id == report.run_id
    with Tape(report.trials_tape) as t:
        assert {run.id for run in seen[1:]} <= {r.id for r in t.runs()}


def test_mutation_library() -> None:
    call = ToolCall(id="t1", name="read", arguments={"page": 2, "city": "Lisbon"})
    step = Step(provider="anthropic", api="anthropic.messages", text="one two three four")
    tooled = Step(provider="anthropic", api="anthropic.messages", tool_calls=[call])
    assert MUTATIONS["empty_text"](step) == {"text": ""}
    assert MUTATIONS["empty_text"](tooled) is None
    assert MUTATIONS["truncate_text"](step) == {"text": "one two"}
    assert MUTATIONS["drop_tool_call"](tooled) == {"tool_calls": []}
    assert MUTATIONS["drop_tool_call"](step) is None
    swapped = MUTATIONS["swap_tool_args"](tooled)
    assert swapped is not None
    assert swapped["tool_calls"][0]["arguments"] == {"page": "Lisbon", "city": 2}


def test_allocation_favours_the_leader_then_cheap_steps() -> None:
    rules = _Rules(threshold=0.5, confidence=0.95, min_trials=2, max_trials=10)
    fresh = [_Tally(step=i, calls=5 - i, cost=0.0) for i in range(1, 5)]
    assert sorted(_plan_round(fresh, rules)) == [1, 1, 2, 2, 3, 3, 4, 4]

    # A leader at 2 of 2 and six steps at 0 of 2 (step k's trials make 8 - k live calls):
    # the leader gets what could settle it as a cause (7 of 7), which, all flipping, would
    # also put every other step clearly below it; so the round is the leader's alone.
    leader = _Tally(step=1, calls=7, cost=0.0, trials=2, flips=2)
    others = [_Tally(step=k, calls=8 - k, cost=0.0, trials=2) for k in range(2, 8)]
    assert _plan_round([leader, *others], rules) == [1] * 5

    # A leader at its cap, 5 of 10, cannot clear them: one attempt per racing step is dealt
    # by information per live call, so the cheap late steps get them.
    leader = _Tally(step=1, calls=7, cost=0.0, trials=10, flips=5)
    plan = _plan_round([leader, *others], rules)
    assert len(plan) == 6 and 1 not in plan
    assert plan.count(7) > plan.count(6) > 0 and not {2, 3, 4} & set(plan)


# --- the command line -------------------------------------------------------------------------


def cli(*args: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "seamtape", "blame", *map(str, args)],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prints_the_estimate_progress_and_ranked_table(failed_run: Recorded) -> None:
    done = cli(
        failed_run.tape,
        "--agent",
        "blame_world:agent",
        "--oracle",
        "blame_world:oracle",
        "--upstream",
        failed_run.server.base_url,
        "--workers",
        "1",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("estimate:") < out.index("trials") < out.index("verdict")
    rows = [line for line in out.splitlines() if "cause" in line or "uncertain" in line]
    assert rows[0].split()[1] == str(world.CAUSE) and "cause" in rows[0]
    assert "stopped: settled" in out


def test_cli_json_on_the_embedded_simulator(tmp_path: Path) -> None:
    from seamtape.faces._demo import trip_agent

    policy = "stochastic:seed=7,temperature=0.5,tools_plan=get_weather|find_hotel"
    with sim.serve(sim.policy_from_spec(policy)) as server:
        with seamtape.record(tmp_path / "trip.tape", upstream=server.base_url) as rec:
            rec.result = trip_agent(rec)
    done = cli(
        tmp_path / "trip.tape",
        "--agent",
        "seamtape.faces._demo:trip_agent",
        "--oracle",
        "$.answer ~= Miradouro",
        "--sim-policy",
        policy,
        "--max-trials",
        "2",
        "--workers",
        "1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["run_id"] == rec.run_id and report["parent_success"] is True
    assert [s["step"] for s in report["steps"]] and report["stopped"] in ("cap", "settled")
    assert "estimate:" in done.stderr


def test_cli_refuses_a_bad_oracle(failed_run: Recorded) -> None:
    done = cli(failed_run.tape, "--agent", "blame_world:agent", "--oracle", "$.x ==")
    assert done.returncode == 2 and "JSON-path" in done.stderr
