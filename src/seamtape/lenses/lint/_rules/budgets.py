"""Budgets: model calls, tokens, exact cost, wall time, context-window share."""

from __future__ import annotations

from collections.abc import Iterator

from seamtape import wire

from .._config import Config
from .._findings import Finding, rank
from .._registry import INT, Param, rule
from .._trace import Trace, Turn
from ._common import (
    _OFF,
    _OFF_INT,
    _WARN_AT,
    _finding,
)


def _crossing(
    cfg: Config,
    rule_id: str,
    limit: float | None,
    points: list[tuple[int, float]],
    what: str,
    unit: str,
) -> Iterator[Finding]:
    """A budget's finding from a running total: critical where it is crossed, warn near it."""
    if limit is None or not points:
        return
    warn_at = cfg[rule_id]["warn_at"]
    crossed = next(((seq, total) for seq, total in points if total > limit), None)
    if crossed is not None:
        seq, total = crossed
        yield _finding(
            cfg,
            rule_id,
            f"{what} reached {_fmt(total, unit)} at step {seq}, over the budget of "
            f"{_fmt(limit, unit)}",
            [seq],
            rule_id,
            total=total,
            limit=limit,
        )
        return
    seq, total = points[-1]
    if total >= warn_at * limit:
        severity = "warn" if rank(cfg.severity(rule_id)) >= rank("warn") else "info"
        yield _finding(
            cfg,
            rule_id,
            f"{what} is at {_fmt(total, unit)}, {total / limit:.0%} of the budget of "
            f"{_fmt(limit, unit)}",
            [seq],
            f"{rule_id} near",
            severity=severity,
            total=total,
            limit=limit,
        )


def _fmt(value: float, unit: str) -> str:
    if unit == "$":
        return f"${value:.6f}".rstrip("0").rstrip(".") if value else "$0"
    if unit == "s":
        return f"{value:.1f}s"
    return f"{int(value)} {unit}"


def model_turns(trace: Trace) -> list[Turn]:
    return [t for t in trace.turns if wire.detect(t.method, t.url) is not None]


@rule(
    "budget-calls",
    "budgets",
    "critical",
    "the run makes more than `max` model calls (a warning at `warn_at` of it)",
    max=Param(None, _OFF_INT, "model calls allowed; unset: no budget"),
    warn_at=_WARN_AT,
)
def budget_calls(trace: Trace, cfg: Config) -> Iterator[Finding]:
    points = [(t.seq, float(n)) for n, t in enumerate(model_turns(trace), start=1)]
    yield from _crossing(
        cfg, "budget-calls", cfg["budget-calls"]["max"], points, "model calls", "calls"
    )


def _tokens(turn: Turn) -> int:
    if turn.step is None or turn.pending:
        return 0
    u = turn.step.usage
    return u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens


@rule(
    "budget-tokens",
    "budgets",
    "critical",
    "the run's tokens (input, output and cache, from each answer's usage) pass `max`",
    max=Param(None, _OFF_INT, "tokens allowed; unset: no budget"),
    warn_at=_WARN_AT,
)
def budget_tokens(trace: Trace, cfg: Config) -> Iterator[Finding]:
    points, total = [], 0
    for turn in model_turns(trace):
        if not turn.pending:
            total += _tokens(turn)
            points.append((turn.seq, float(total)))
    yield from _crossing(
        cfg, "budget-tokens", cfg["budget-tokens"]["max"], points, "tokens", "tokens"
    )


@rule(
    "budget-cost",
    "budgets",
    "critical",
    "the run's cost (exact: each answer's usage at the bundled price table's rates) passes "
    "`max_usd`",
    max_usd=Param(None, _OFF, "USD allowed; unset: no budget"),
    warn_at=_WARN_AT,
)
def budget_cost(trace: Trace, cfg: Config) -> Iterator[Finding]:
    limit = cfg["budget-cost"]["max_usd"]
    points, total, unpriced = [], 0.0, set()
    for turn in model_turns(trace):
        if turn.pending or turn.step is None:
            continue
        if turn.step.cost_usd is None:
            if _tokens(turn):
                unpriced.add(turn.step.model or "?")
            continue
        total += turn.step.cost_usd
        points.append((turn.seq, total))
    yield from _crossing(cfg, "budget-cost", limit, points, "cost", "$")
    if limit is not None and unpriced:
        yield _finding(
            cfg,
            "budget-cost",
            f"the cost of {', '.join(sorted(unpriced))} is unknown (not in the price table, "
            f"as of {wire.AS_OF}); the budget counts only priced steps",
            [],
            "unpriced",
            severity="info",
        )


@rule(
    "budget-time",
    "budgets",
    "critical",
    "the run's wall time since it began passes `max_seconds`",
    max_seconds=Param(None, _OFF, "seconds allowed; unset: no budget"),
    warn_at=_WARN_AT,
)
def budget_time(trace: Trace, cfg: Config) -> Iterator[Finding]:
    points = []
    for turn in trace.turns:
        end = trace.now if turn.pending else turn.ended
        points.append((turn.seq, max(0.0, end - trace.started)))
    limit = cfg["budget-time"]["max_seconds"]
    yield from _crossing(cfg, "budget-time", limit, points, "wall time", "s")


# Context windows in tokens, by exact model name; the configuration adds to and overrides them.
CONTEXT_WINDOWS = {
    "claude-opus-4-1": 200_000,
    "claude-opus-4-5": 200_000,
    "claude-sonnet-4-5": 200_000,
    "claude-sonnet-4-20250514": 200_000,
    "claude-haiku-4-5": 200_000,
    "claude-3-5-haiku-20241022": 200_000,
    "gpt-5": 400_000,
    "gpt-5-mini": 400_000,
    "gpt-5-nano": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gemini-2.5-pro": 1_048_576,
    "gemini-2.5-flash": 1_048_576,
    "gemini-2.5-flash-lite": 1_048_576,
    "sim-claude": 200_000,
    "sim-gpt": 128_000,
    "sim-gemini": 1_048_576,
}


@rule(
    "context-window",
    "budgets",
    "warn",
    "a request's prompt (input and cache tokens) fills `warn_at` of its model's context "
    "window; critical when it fills all of it",
    windows=Param(
        {}, {"type": "object", "additionalProperties": INT}, "model -> window, over the defaults"
    ),
    warn_at=_WARN_AT,
)
def context_window(trace: Trace, cfg: Config) -> Iterator[Finding]:
    params = cfg["context-window"]
    windows = {**CONTEXT_WINDOWS, **params["windows"]}
    fullest: dict[str, tuple[float, int, int]] = {}
    for turn in trace.turns:
        if not turn.answered or turn.step is None:
            continue
        window = windows.get(turn.step.model)
        u = turn.step.usage
        prompt = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
        if window and prompt / window > fullest.get(turn.step.model, (0.0, 0, 0))[0]:
            fullest[turn.step.model] = (prompt / window, turn.seq, prompt)
    for model, (share, seq, prompt) in fullest.items():
        if share >= params["warn_at"]:
            yield _finding(
                cfg,
                "context-window",
                f"the prompt at step {seq} filled {share:.0%} of {model}'s context window "
                f"({prompt} of {windows[model]} tokens)",
                [seq],
                f"window {model}",
                severity="critical" if share >= 1 else None,
            )
