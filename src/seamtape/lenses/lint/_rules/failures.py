"""Failure modes: each failed step classified once."""

from __future__ import annotations

from collections.abc import Iterator

from .._config import Config
from .._findings import Finding
from .._registry import rule
from .._trace import Trace
from ._common import (
    _failed,
    _finding,
    _short,
)
from .contracts import cut_stream
from .loops import _retryable, repeated_calls, repeated_sequences, retry_runs
from .policy import schema_error

FAILURE_MODES = (
    "schema_mismatch",
    "cycle",
    "retry_exhaustion",
    "tool_failure",
    "http_error",
    "refusal",
    "truncated_output",
)


def failure_modes(trace: Trace, cfg: Config) -> dict[int, tuple[str, str]]:
    """step -> (failure mode, why) for each failed step, each classified exactly once."""
    looped = {c.index for calls in repeated_calls(trace, cfg).values() for c in calls[-1:]}
    for block in repeated_sequences(trace, cfg):
        looped.add(block[-1].index)
    exhausted = {
        t.seq: len(run)
        for run in retry_runs(trace)
        if not run[-1].pending and _retryable(run[-1])
        for t in run
    }
    modes: dict[int, tuple[str, str]] = {}
    for turn in trace.turns:
        if turn.pending:
            continue
        step = turn.step
        found: list[tuple[str, str]] = []
        for call in turn.calls:
            problem = schema_error(call)
            if problem:
                found.append(("schema_mismatch", f"{call.name}: {problem}"))
            if call.index in looped:
                found.append(("cycle", f"{call.name} repeats in a loop"))
            why = _failed(call)
            if why:
                found.append(("tool_failure", f"{call.name} returned an {why} result"))
        if turn.seq in exhausted:
            found.append(
                ("retry_exhaustion", f"retried {exhausted[turn.seq]} times, still failing")
            )
        cut = cut_stream(turn)
        if turn.http_failed and not cut:
            detail = f"HTTP {turn.status}" if turn.status else "the connection failed"
            if step is not None and step.text:
                detail += f": {_short(step.text, 80)}"
            found.append(("http_error", detail))
        if step is not None and step.stop_reason in ("content_filter", "refusal", "SAFETY"):
            found.append(("refusal", f"the model refused (stop reason {step.stop_reason})"))
        if cut:
            found.append(("truncated_output", cut))
        elif step is not None and step.stop_reason == "max_tokens":
            found.append(("truncated_output", "the answer stopped at the output token limit"))
        if found:
            found.sort(key=lambda f: FAILURE_MODES.index(f[0]))
            modes[turn.seq] = found[0]
    return modes


@rule(
    "failure-mode",
    "failures",
    "info",
    "each failed step classified once, first of: schema mismatch, cycle, retry exhaustion, "
    "tool failure, HTTP error, refusal, truncated output",
)
def failure_mode(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for seq, (mode, why) in failure_modes(trace, cfg).items():
        yield _finding(
            cfg,
            "failure-mode",
            f"step {seq} failed: {mode.replace('_', ' ')} ({why})",
            [seq],
            f"{mode} {why}",
            mode=mode,
        )
