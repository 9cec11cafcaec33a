"""Contracts: tool calls paired with one result, order rules, stream boundaries, cut streams."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from seamtape import wire

from .._config import Config
from .._findings import Finding
from .._registry import PAIRS, SEQUENCES, Param, rule
from .._streams import stream_problems
from .._trace import Trace, Turn
from ._common import (
    _finding,
)


@rule(
    "tool-pairing",
    "contracts",
    "warn",
    "a tool call gets no result in its conversation's next request, or more than one; or a "
    "result answers no call",
)
def tool_pairing(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for call in trace.calls:
        if len(call.results) > 1:
            yield _finding(
                cfg,
                "tool-pairing",
                f"{call.name} (call {call.call.id or call.name}) was answered "
                f"{len(call.results)} times",
                [call.step, *(s for s, _ in call.results)],
                f"twice {call.key}",
            )
        elif not call.results:
            later = [
                t
                for t in trace.conversation_turns(call.conversation)
                if t.seq > call.step and t.step is not None
            ]
            if later:
                yield _finding(
                    cfg,
                    "tool-pairing",
                    f"{call.name} (call {call.call.id or call.name}) got no result: the next "
                    f"request (step {later[0].seq}) does not answer it",
                    [call.step, later[0].seq],
                    f"unanswered {call.key}",
                )
    for seq, result in trace.orphans:
        yield _finding(
            cfg,
            "tool-pairing",
            f"a tool result for call {result.call_id!r} answers no call the model made",
            [seq],
            f"orphan {result.call_id}",
        )


@rule(
    "tool-order",
    "contracts",
    "warn",
    "a tool listed second in a `must_precede` pair is called before the first ever was; a tool "
    "listed first in a `must_follow` pair is never followed by the second; a `forbidden` "
    "sequence of calls happens back to back",
    must_precede=Param([], PAIRS, "[before, after] pairs: `after` needs an earlier `before`"),
    must_follow=Param([], PAIRS, "[first, then] pairs: each `first` needs a later `then`"),
    forbidden=Param([], SEQUENCES, "sequences of tool names that must not happen in a row"),
)
def tool_order(trace: Trace, cfg: Config) -> Iterator[Finding]:
    params = cfg["tool-order"]
    names = [c.name for c in trace.calls]
    for before, after in params["must_precede"]:
        for i, call in enumerate(trace.calls):
            if fnmatch.fnmatchcase(call.name, after) and not any(
                fnmatch.fnmatchcase(n, before) for n in names[:i]
            ):
                yield _finding(
                    cfg,
                    "tool-order",
                    f"{call.name} was called before any {before}",
                    [call.step],
                    f"precede {before} {after}",
                )
                break
    if trace.complete:
        for first, then in params["must_follow"]:
            for i, call in enumerate(trace.calls):
                if fnmatch.fnmatchcase(call.name, first) and not any(
                    fnmatch.fnmatchcase(n, then) for n in names[i + 1 :]
                ):
                    yield _finding(
                        cfg,
                        "tool-order",
                        f"{call.name} was never followed by {then}",
                        [call.step],
                        f"follow {first} {then}",
                    )
                    break
    for sequence in params["forbidden"]:
        span = len(sequence)
        for i in range(len(names) - span + 1):
            if all(fnmatch.fnmatchcase(names[i + j], sequence[j]) for j in range(span)):
                calls = trace.calls[i : i + span]
                yield _finding(
                    cfg,
                    "tool-order",
                    f"the forbidden sequence {' → '.join(sequence)} happened",
                    (c.step for c in calls),
                    f"forbidden {' '.join(sequence)}",
                )


def cut_stream(turn: Turn) -> str:
    """Why a streamed answer did not arrive whole, or ""."""
    if turn.pending or not turn.stream or turn.status >= 400:
        return ""
    if turn.error is not None:
        return f"the connection failed mid-stream ({turn.error.get('type', 'error')})"
    if turn.step is None and turn.status:
        return "the stream ended before its last event"
    return ""


@rule(
    "stream-cut",
    "contracts",
    "warn",
    "a streamed answer stopped before its end: the connection dropped or the last event never came",
)
def stream_cut(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for turn in trace.turns:
        why = cut_stream(turn)
        if why:
            yield _finding(cfg, "stream-cut", why, [turn.seq], f"cut {turn.url}")


@rule(
    "stream-boundaries",
    "contracts",
    "warn",
    "a stream's framing is broken: a block opened twice or never closed, deltas for a block not "
    "open, indexes out of order, no start or no end event",
)
def stream_boundaries(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for turn in trace.turns:
        if turn.pending or not turn.stream or turn.response_body is None or cut_stream(turn):
            continue
        if turn.status >= 400:
            continue
        api = wire.detect(turn.method, turn.url)
        for problem in stream_problems(api or "", turn.response_body)[:3]:
            yield _finding(cfg, "stream-boundaries", problem, [turn.seq], f"{api} {problem}")
