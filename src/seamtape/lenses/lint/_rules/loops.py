"""Runaway repetition: retry storms (tool and SDK level), loops, error-retry loops, spirals."""

from __future__ import annotations

from collections.abc import Iterator

from .._config import Config
from .._findings import Finding
from .._registry import INT, Param, rule
from .._trace import Call, Trace, Turn
from ._common import (
    _failed,
    _finding,
    _in_conversation,
    _short,
    _succeeded,
)


@rule(
    "retry-storm",
    "retries",
    "warn",
    "the same tool is called with the same arguments `threshold` times in a row without a "
    "success; a success resets the count for that call only",
    threshold=Param(3, INT, "identical calls in one streak"),
)
def retry_storm(trace: Trace, cfg: Config) -> Iterator[Finding]:
    threshold = cfg["retry-storm"]["threshold"]
    streaks: dict[str, list[Call]] = {}
    done: list[list[Call]] = []
    for call in trace.calls:
        key = f"{call.conversation}/{call.key}"
        streak = streaks.setdefault(key, [])
        streak.append(call)
        if _succeeded(call):
            done.append(streak)
            streaks[key] = []
    done.extend(streaks.values())
    for streak in done:
        if len(streak) >= threshold:
            first = streak[0]
            yield _finding(
                cfg,
                "retry-storm",
                f"{first.name} was called {len(streak)} times with the same arguments "
                f"without a success in between: {_short(first.key)}",
                (c.step for c in streak),
                first.key,
                calls=len(streak),
            )


def _retryable(turn: Turn) -> bool:
    return turn.status in (0, 408, 409, 429) or turn.status >= 500


def retry_runs(trace: Trace) -> list[list[Turn]]:
    """Runs of the same request sent again after a 429, 5xx or dropped connection."""
    runs: list[list[Turn]] = []
    latest: dict[bytes, list[Turn]] = {}
    for turn in trace.turns:
        run = latest.get(turn.request_hash)
        if run is not None and not run[-1].pending and _retryable(run[-1]):
            run.append(turn)
        else:
            run = [turn]
            latest[turn.request_hash] = run
            runs.append(run)
    return [run for run in runs if len(run) > 1]


@rule(
    "sdk-retry-storm",
    "retries",
    "warn",
    "the same request is sent again more than `max_retries` times after a 429, a 5xx or a "
    "dropped connection",
    max_retries=Param(2, INT, "retries of one request allowed (the SDKs' own default is 2)"),
)
def sdk_retry_storm(trace: Trace, cfg: Config) -> Iterator[Finding]:
    allowed = cfg["sdk-retry-storm"]["max_retries"]
    for run in retry_runs(trace):
        if len(run) - 1 > allowed:
            statuses = ", ".join(str(t.status or "dropped") for t in run if not t.pending)
            yield _finding(
                cfg,
                "sdk-retry-storm",
                f"the same request was sent {len(run)} times (answers: {statuses}), "
                f"more than {allowed} retries",
                (t.seq for t in run),
                f"{run[0].url} {run[0].request_hash.hex()[:16]}",
                attempts=len(run),
            )


def repeated_calls(trace: Trace, cfg: Config) -> dict[str, list[Call]]:
    """Calls that repeat within the window: key -> the calls, up to the one that crossed."""
    params = cfg["loop-repeat"]
    found: dict[str, list[Call]] = {}
    for calls in _in_conversation(trace).values():
        for i, call in enumerate(calls):
            if call.key in found:
                continue
            window = calls[max(0, i - params["window"] + 1) : i + 1]
            same = [c for c in window if c.key == call.key]
            if len(same) >= params["repeats"]:
                found[call.key] = same
    return found


@rule(
    "loop-repeat",
    "loops",
    "warn",
    "the same call (tool and arguments) is made `repeats` times within the last `window` "
    "calls of one conversation",
    repeats=Param(4, INT, "identical calls that make a loop (the 4th identical call)"),
    window=Param(10, INT, "how many recent calls are looked at"),
)
def loop_repeat(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for key, calls in repeated_calls(trace, cfg).items():
        yield _finding(
            cfg,
            "loop-repeat",
            f"{calls[0].name} was called {len(calls)} times with the same arguments within "
            f"{cfg['loop-repeat']['window']} calls: {_short(key)}",
            (c.step for c in calls),
            key,
        )


def repeated_sequences(trace: Trace, cfg: Config) -> list[list[Call]]:
    """Blocks of calls (two or more different calls) repeated back to back."""
    params = cfg["loop-sequence"]
    found: list[list[Call]] = []
    for calls in _in_conversation(trace).values():
        keys = [c.key for c in calls]
        i = 0
        while i < len(keys):
            hit = 0
            for period in range(2, params["max_period"] + 1):
                block = keys[i : i + period]
                span = period * params["cycles"]
                if len(block) < period or len(set(block)) < 2 or i + span > len(keys):
                    continue
                if all(keys[i + j] == block[j % period] for j in range(span)):
                    hit = span
                    break
            if hit:
                found.append(calls[i : i + hit])
                i += hit
            else:
                i += 1
    return found


@rule(
    "loop-sequence",
    "loops",
    "warn",
    "a sequence of 2 to `max_period` different calls repeats `cycles` times back to back",
    max_period=Param(4, {"type": "integer", "minimum": 2}, "longest repeating sequence"),
    cycles=Param(3, {"type": "integer", "minimum": 2}, "repetitions that make a loop"),
)
def loop_sequence(trace: Trace, cfg: Config) -> Iterator[Finding]:
    cycles = cfg["loop-sequence"]["cycles"]
    for calls in repeated_sequences(trace, cfg):
        period = len(calls) // cycles
        names = " → ".join(c.name for c in calls[:period])
        yield _finding(
            cfg,
            "loop-sequence",
            f"the calls {names} repeat {cycles} times in a row",
            (c.step for c in calls),
            " ".join(c.key for c in calls[:period]),
        )


@rule(
    "error-retry-loop",
    "retries",
    "warn",
    "one tool fails `errors` times in a row in a conversation while the agent keeps calling "
    "it with changed arguments (identical arguments are a retry storm)",
    errors=Param(3, INT, "consecutive failures of one tool"),
)
def error_retry_loop(trace: Trace, cfg: Config) -> Iterator[Finding]:
    limit = cfg["error-retry-loop"]["errors"]
    streaks: dict[tuple[str, str], list[Call]] = {}
    done: list[list[Call]] = []
    for call in trace.calls:
        key = (call.conversation, call.name)
        if _failed(call):
            streaks.setdefault(key, []).append(call)
        elif call.result is not None:
            done.append(streaks.pop(key, []))
    done.extend(streaks.values())
    for streak in done:
        if len(streak) >= limit and len({c.key for c in streak}) > 1:
            yield _finding(
                cfg,
                "error-retry-loop",
                f"{streak[0].name} failed {len(streak)} times in a row and the agent kept "
                "calling it",
                (c.step for c in streak),
                streak[0].name,
            )


@rule(
    "reasoning-spiral",
    "loops",
    "warn",
    "`turns` model answers in a row in one conversation without a tool call",
    turns=Param(5, INT, "consecutive answers without a tool call"),
)
def reasoning_spiral(trace: Trace, cfg: Config) -> Iterator[Finding]:
    limit = cfg["reasoning-spiral"]["turns"]
    streaks: dict[str, list[Turn]] = {}
    done: list[list[Turn]] = []
    for turn in trace.turns:
        if not turn.answered:
            continue
        if turn.calls:
            done.append(streaks.pop(turn.conversation, []))
        else:
            streaks.setdefault(turn.conversation, []).append(turn)
    done.extend(streaks.values())
    for streak in done:
        if len(streak) >= limit:
            yield _finding(
                cfg,
                "reasoning-spiral",
                f"the model answered {len(streak)} times in a row without calling a tool",
                (t.seq for t in streak),
                f"spiral {len(streak)}",
            )
