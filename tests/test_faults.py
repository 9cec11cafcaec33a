"""Injected-fault fixtures: reproducible from a seed, failing for the planted reason only."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import pytest

from seamtape import fork
from seamtape._steps import steps_of
from seamtape.proof import faults
from seamtape.tape import Tape


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_same_seed_same_world_tape_digest_and_root_cause(tmp_path: Path) -> None:
    port = _free_port()  # the URL is part of the digest, so both recordings use one port
    a = faults.design(11, "misleading_retrieval")
    b = faults.design(11, "misleading_retrieval")
    assert a == b
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with faults.planted(a, tmp_path / "a", port=port) as fa:
        first = (fa.digest, fa.root_cause, fa.steps)
    with faults.planted(b, tmp_path / "b", port=port) as fb:
        second = (fb.digest, fb.root_cause, fb.steps)
    assert first == second
    assert faults.design(12, "misleading_retrieval") != a


def test_lengths_and_positions_are_drawn_within_bounds() -> None:
    for seed in range(40):
        for kind in faults.KINDS:
            plan = faults.design(seed, kind)
            assert faults.MIN_STEPS <= plan.steps <= faults.MAX_STEPS
            assert plan.root_cause in faults.positions(kind, plan.steps)
    assert {faults.design(s, "wrong_instruction").steps for s in range(60)} >= {3, 20}


@pytest.mark.parametrize("kind", faults.KINDS)
def test_each_class_fails_and_its_clean_twin_succeeds(tmp_path: Path, kind: str) -> None:
    plan = faults.design(3, kind, steps=6)
    with faults.planted(plan, tmp_path) as fx:
        assert fx.failed and fx.oracle(fx.result) is False
        assert fx.steps == plan.steps == 6
        assert fx.result["total"] != plan.world.truth
    (tmp_path / "twin").mkdir()
    with faults.planted(plan, tmp_path / "twin", world=plan.world.clean()) as twin:
        assert not twin.failed and twin.oracle(twin.result) is True
        assert twin.result["total"] == plan.world.truth


def test_controls_succeed_or_fail_with_no_step_to_blame(tmp_path: Path) -> None:
    with faults.planted(faults.design(1, "none", steps=5), tmp_path) as fx:
        assert not fx.failed and fx.root_cause is None
    with faults.planted(faults.design(1, "unfixable", steps=5), tmp_path) as fx:
        assert fx.failed and fx.root_cause is None


def test_the_root_cause_step_consumes_the_planted_fault(tmp_path: Path) -> None:
    plan = faults.design(5, "corrupted_tool_output", steps=7, position=4)
    with faults.planted(plan, tmp_path) as fx, Tape(fx.tape) as t:
        steps = steps_of(t, fx.run_id)
    wrong = dict(plan.world.corrupt)
    (account,) = wrong
    carried = [
        i
        for i, s in enumerate(steps, 1)
        if any(f"balance {wrong[account]} EUR" in r.content for r in s.tool_results)
    ]
    assert carried == [4]


def test_resampling_the_root_cause_can_fix_the_run_and_an_earlier_step_cannot(
    tmp_path: Path,
) -> None:
    plan = faults.design(2, "dropped_message", steps=5, position=4)
    with faults.planted(plan, tmp_path, temperature=1.0) as fx:
        at_root = [
            fx.oracle(fork(fx.tape, fx.run_id, step=4, agent=fx.agent, resample=True).result)
            for _ in range(4)
        ]
        earlier = [
            fx.oracle(fork(fx.tape, fx.run_id, step=2, agent=fx.agent, resample=True).result)
            for _ in range(4)
        ]
    assert any(at_root)
    assert not any(earlier)


def test_agent_oracle_and_world_survive_pickling_for_process_pools(tmp_path: Path) -> None:
    plan = faults.design(4, "poisoned_tool_argument")
    agent = faults.LedgerAgent(plan.world)
    oracle = faults.TotalOracle(plan.world.truth)
    assert pickle.loads(pickle.dumps(agent)) == agent
    assert pickle.loads(pickle.dumps(oracle)) == oracle
    assert oracle({"total": plan.world.truth}) and not oracle({"total": None})
