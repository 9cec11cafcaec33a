"""Blame when the tail is sampled: the sampled-tail world, the paired contrast, the leader's
certification, top(k), a run with no result, the trials tape, and the shared pool."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import blame_world as world
import seamtape
from seamtape import sim
from seamtape._errors import SeamtapeError
from seamtape.engine.blame import (
    BlameReport,
    StepBlame,
    _plan_round,
    _Rules,
    _Tally,
    process_pool,
    scratch_path,
    shutdown_pools,
)
from seamtape.engine.blame._allocation import _leader, _verdict
from seamtape.proof import faults

RULES = _Rules(threshold=0.5, confidence=0.95, min_trials=2, max_trials=10, leader_trials=40)


def chain(counts: list[tuple[int, int]]) -> list[_Tally]:
    """Tallies for steps 1..n with (trials, flips), each step's tail being the next step."""
    tallies = [
        _Tally(step=i, calls=len(counts) - i + 1, cost=0.0, trials=n, flips=f)
        for i, (n, f) in enumerate(counts, 1)
    ]
    for t, nxt in itertools.pairwise(tallies):
        t.ref = nxt
    return tallies


# --- the estimator, from counts alone ---------------------------------------------------------


def test_the_contrast_ranks_where_the_flip_rate_drops_not_where_it_is_highest() -> None:
    # A sampled tail: every step up to the root (4) flips, since its tail resamples the root.
    tallies = chain([(10, 9), (10, 9), (10, 9), (10, 9), (10, 0), (10, 0)])
    assert _leader(tallies, RULES).step == 4
    flip_rate = _Rules(0.5, 0.95, 2, 10, estimator="flip_rate")
    assert _leader(tallies, flip_rate).step == 1  # the raw flip rate blames the first step


def test_a_step_whose_tail_alone_flips_as_often_is_not_a_cause() -> None:
    tallies = chain([(40, 20), (40, 40), (10, 0)])
    # Step 1 flips above θ, but less often than resampling from step 2 on: its flips are its
    # tail's.
    assert _verdict(tallies[0], RULES) == "not the cause"
    assert _verdict(tallies[1], RULES) == "cause"  # above θ and above its tail
    # Without the tail's own trials the question cannot be answered yet.
    young = chain([(30, 28), (2, 0)])
    assert _verdict(young[0], RULES) == "uncertain"


def test_the_leader_goes_past_max_trials_until_it_is_certified() -> None:
    # The leader at 9 of 10, at the others' cap: the sequence still holds θ, so it gets more.
    tallies = chain([(2, 0), (10, 9), (10, 0)])
    plan = _plan_round(tallies, RULES)
    assert plan.count(2) > 0
    # A leader that does not look like a cause stops at max_trials.
    weak = chain([(2, 0), (10, 4), (10, 0)])
    assert 2 not in _plan_round(weak, RULES)


def test_identical_resamples_are_not_attempts() -> None:
    t = _Tally(step=1, calls=1, cost=0.0, trials=3, skipped=5)
    assert t.attempts == 3


def test_top_returns_only_steps_that_flipped_and_says_when_fewer_qualify() -> None:
    steps = [
        StepBlame(step=3, trials=10, flips=8),
        StepBlame(step=1, trials=2, flips=0),
        StepBlame(step=2, trials=2, flips=0),
    ]
    report = BlameReport("r", False, steps, 0, 0.0, 0, 0.0, 0, "settled")
    top = report.top(3)
    assert top == [3]
    assert "only 1 of the 3" in top.note
    assert report.top(1).note == ""


# --- the sampled-tail world -------------------------------------------------------------------


def test_a_sampled_tail_samples_a_conversation_it_never_saw(tmp_path: Path) -> None:
    plan = faults.design(3, "corrupted_tool_output", steps=4, position=3)
    digests = {}
    for tails in faults.TAILS:
        (tmp_path / tails).mkdir()
        with faults.planted(plan, tmp_path / tails, temperature=1.0, tails=tails) as fx:
            with seamtape.Tape(fx.tape) as t:
                digests[tails] = [ex.response_body for ex in t.exchanges(fx.run_id)]
            assert fx.failed and fx.policy.sample_every == (tails == "sampled")
            # Nothing in what blame reads names the fault or its step.
            assert plan.kind not in fx.tape.name and f"at{plan.root_cause}" not in fx.tape.name
            with seamtape.Tape(fx.tape) as t:
                assert plan.kind not in (t.run(fx.run_id).name or "")
    # The recording is answered greedily either way: the same answers, byte for byte.
    assert digests["repeats"] == digests["sampled"]
    from seamtape.proof._ledger import task_text
    from seamtape.wire import Message, Step

    step = Step(
        provider="anthropic",
        api="anthropic.messages",
        model="sim-ledger",
        system="s",
        messages=[Message(role="user", text=task_text(plan.world))],
    )
    greedy = faults.LedgerModel(0, 1.0).respond(step)
    sampled = faults.LedgerModel(0, 1.0, sample_every=True).respond(step)
    assert greedy.text != sampled.text  # a first sight is sampled too, as a provider samples


# --- what a user meets ------------------------------------------------------------------------


def test_a_run_with_no_recorded_result_is_one_clear_error(tmp_path: Path) -> None:
    with sim.serve(world.SummitModel()) as server:
        with seamtape.record(tmp_path / "summit.tape", upstream=server.base_url) as rec:
            world.agent(rec)  # the result is returned, not stored on the session
        with pytest.raises(SeamtapeError, match=r"session\.result"):
            seamtape.blame(
                tmp_path / "summit.tape",
                agent=world.agent,
                oracle=world.oracle,
                workers=1,
                steps=[1],
                max_trials=2,
            )

        def reads_the_run(result: object, run: seamtape.engine.blame.RunView) -> bool:
            return len(run.steps()) == world.STEPS

        report = seamtape.blame(
            tmp_path / "summit.tape",
            agent=world.agent,
            oracle=reads_the_run,
            workers=1,
            steps=[1],
            max_trials=2,
        )
        assert report.parent_success is True


def test_trials_go_to_a_scratch_tape_or_where_into_says(tmp_path: Path) -> None:
    with sim.serve(world.SummitModel()) as server:
        with seamtape.record(tmp_path / "summit.tape", upstream=server.base_url) as rec:
            rec.result = world.agent(rec)
        report = seamtape.blame(
            tmp_path / "summit.tape",
            agent=world.agent,
            oracle=world.oracle,
            workers=1,
            steps=[6],
            max_trials=2,
        )
        assert Path(report.trials_tape) == scratch_path(tmp_path / "summit.tape")
        assert report.upstream == server.base_url  # the run's own upstream, said in the report
        into = tmp_path / "elsewhere.tape"
        again = seamtape.blame(
            tmp_path / "summit.tape",
            agent=world.agent,
            oracle=world.oracle,
            workers=1,
            steps=[6],
            max_trials=2,
            into=into,
        )
        assert Path(again.trials_tape) == into.resolve()
        with pytest.raises(SeamtapeError, match="another tape"):
            seamtape.blame(
                tmp_path / "summit.tape",
                agent=world.agent,
                oracle=world.oracle,
                workers=1,
                steps=[6],
                into=tmp_path / "summit.tape",
            )
    with seamtape.Tape(tmp_path / "summit.tape") as t:
        assert [r.id for r in t.runs()] == [rec.run_id]  # the recording alone
    with seamtape.Tape(into) as t:
        assert {r.parent for r in t.runs()} == {None, rec.run_id}


def test_one_worker_pool_per_process_reused_until_shut_down() -> None:
    first = process_pool(2)
    assert process_pool(2) is first
    shutdown_pools()
    second = process_pool(2)
    assert second is not first
    shutdown_pools()


def test_the_command_says_where_live_calls_and_trials_went(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    with sim.serve(world.SummitModel()) as server:
        url = server.base_url
        with seamtape.record(tmp_path / "summit.tape", upstream=url) as rec:
            rec.result = world.agent(rec)
        into = tmp_path / "trials.tape"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "seamtape",
                "blame",
                str(tmp_path / "summit.tape"),
                "--agent",
                "blame_world:agent",
                "--oracle",
                "blame_world:oracle",
                "--workers",
                "1",
                "--max-trials",
                "2",
                "--into",
                str(into),
            ],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        )
    assert done.returncode == 0, done.stderr
    assert f"live calls went to {url}" in done.stderr
    assert f"trial runs written to {into}" in done.stderr
    with seamtape.Tape(tmp_path / "summit.tape") as t:
        assert len(t.runs()) == 1
    with seamtape.Tape(into) as t:
        assert len(t.runs()) > 1


def test_one_oracle_notion_for_blame_and_check_replay() -> None:
    from seamtape.engine.blame import oracle_from, passed
    from seamtape.engine.check import _grade

    assert passed("success") and not passed("failure") and passed(True) and not passed(0)
    # An oracle may answer with check-replay's outcome strings; blame reads them alike.
    judge = oracle_from(lambda result: "success" if result["ok"] else "failure")
    assert judge({"ok": True}, None) is True and judge({"ok": False}, None) is False
    assert _grade(lambda result: result["ok"], {"ok": True}) == "success"
