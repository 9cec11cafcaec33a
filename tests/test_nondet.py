"""NondetSource: time, ids and randomness drawn for real when recording, served when replaying."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import seamtape

DRAWS: dict[str, Callable[[seamtape.NondetSource], Any]] = {
    "now": lambda nd: nd.now(),
    "time": lambda nd: nd.time(),
    "monotonic": lambda nd: nd.monotonic(),
    "uuid4": lambda nd: nd.uuid4(),
    "random": lambda nd: nd.random(),
    "randint": lambda nd: nd.randint(1, 10**12),
    "choice": lambda nd: nd.choice([f"tool_{i}" for i in range(10**4)]),
    "token_hex": lambda nd: nd.token_hex(16),
    "sleep": lambda nd: nd.sleep(0),
    "asleep": lambda nd: asyncio.run(nd.asleep(0)),
}


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("replay drew a live value")


def _no_live_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    # time.monotonic stays: the event loop reads it. A live monotonic() would not equal the
    # recorded one, which the test compares.
    for module, name in [
        (time, "time"),
        (random, "random"),
        (random, "randint"),
        (random, "randrange"),
        (uuid, "uuid4"),
        (secrets, "token_hex"),
    ]:
        monkeypatch.setattr(module, name, _refuse)


@pytest.mark.parametrize("kind", DRAWS)
def test_every_draw_replays_what_was_recorded(tape_path: Path, monkeypatch, kind: str) -> None:
    draw = DRAWS[kind]
    with seamtape.record(tape_path) as rec:
        recorded = [draw(rec.nondet) for _ in range(3)]
    with monkeypatch.context() as live:
        _no_live_sources(live)
        with seamtape.replay(tape_path) as rep:
            replayed = [draw(rep.nondet) for _ in range(3)]
    assert replayed == recorded
    assert rep.digest == rec.digest
    with seamtape.Tape(tape_path) as tape:
        assert len(tape.draws(rec.run_id)) == 3


def test_recorded_draws_are_real_values(tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec:
        nd = rec.nondet
        wall_before, mono_before = time.time(), time.monotonic()
        now, t, mono = nd.now(), nd.time(), nd.monotonic()
        wall_after, mono_after = time.time(), time.monotonic()
        ids = {nd.uuid4() for _ in range(5)}
        tokens = {nd.token_hex(8) for _ in range(5)}
        randoms = [nd.random() for _ in range(5)]
        ints = [nd.randint(3, 5) for _ in range(20)]
        picked = {nd.choice("abc") for _ in range(30)}
    assert now.tzinfo is not None
    assert wall_before - 1e-6 <= now.timestamp() <= wall_after  # now() keeps microseconds
    assert wall_before <= t <= wall_after
    assert mono_before <= mono <= mono_after
    assert len(ids) == 5 and all(i.version == 4 for i in ids)
    assert len(tokens) == 5 and all(len(tok) == 16 for tok in tokens)
    assert len(set(randoms)) == 5 and all(0 <= r < 1 for r in randoms)
    assert set(ints) <= {3, 4, 5}
    assert picked <= set("abc") and len(picked) > 1


def test_a_draw_of_a_different_kind_diverges(tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec:
        rec.nondet.uuid4()
    with pytest.raises(seamtape.DivergenceError) as info, seamtape.replay(tape_path) as rep:
        rep.nondet.time()
    text = str(info.value)
    assert "time()" in text and "uuid4()" in text
    assert rec.run_id in text


def test_drawing_more_than_was_recorded_diverges(tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec:
        rec.nondet.random()
    with (
        pytest.raises(seamtape.DivergenceError, match=r"random\(\)") as info,
        seamtape.replay(tape_path) as rep,
    ):
        rep.nondet.random()
        rep.nondet.random()
    assert rec.run_id in str(info.value)


def test_a_recorded_randint_outside_the_replayed_range_diverges(tape_path: Path) -> None:
    with seamtape.record(tape_path) as rec:
        value = rec.nondet.randint(50, 100)
    with (
        pytest.raises(seamtape.DivergenceError, match=str(value)),
        seamtape.replay(tape_path) as rep,
    ):
        rep.nondet.randint(0, 10)


@pytest.mark.parametrize("extra", ["wrong kind", "one too many"])
def test_a_swallowed_draw_divergence_still_fails_the_replay(tape_path: Path, extra: str) -> None:
    with seamtape.record(tape_path) as rec:
        rec.nondet.uuid4()
    with pytest.raises(seamtape.DivergenceError), seamtape.replay(tape_path) as rep:
        if extra == "wrong kind":
            with contextlib.suppress(BaseException):  # an agent that swallows everything
                rep.nondet.time()
        rep.nondet.uuid4()
        if extra == "one too many":
            with contextlib.suppress(BaseException):
                rep.nondet.uuid4()


class SleepLog:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.calls.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_recording_really_sleeps_and_replay_does_not(tape_path: Path, monkeypatch) -> None:
    log = SleepLog()
    monkeypatch.setattr(time, "sleep", log.sleep)
    monkeypatch.setattr(asyncio, "sleep", log.asleep)

    async def backoff(session: seamtape.Session) -> None:
        session.nondet.sleep(0.5)
        await session.nondet.asleep(2.0)

    with seamtape.record(tape_path) as rec:
        asyncio.run(backoff(rec))
    assert log.calls == [0.5, 2.0]

    log.calls.clear()
    with seamtape.replay(tape_path) as rep:
        asyncio.run(backoff(rep))
    assert [s for s in log.calls if s > 0] == []
    assert rep.digest == rec.digest


def test_draws_are_part_of_the_digest(tmp_path: Path) -> None:
    def run(name: str, draw: Callable[[seamtape.NondetSource], Any]) -> tuple[str, Any]:
        with seamtape.record(tmp_path / f"{name}.tape") as session:
            value = draw(session.nondet)
        return session.digest, value

    same_a, _ = run("a", lambda nd: nd.sleep(0))
    same_b, _ = run("b", lambda nd: nd.sleep(0))
    nothing, _ = run("c", lambda nd: None)
    token_a, value_a = run("d", lambda nd: nd.token_hex())
    token_b, value_b = run("e", lambda nd: nd.token_hex())
    assert same_a == same_b
    assert same_a != nothing
    assert value_a != value_b
    assert token_a != token_b
