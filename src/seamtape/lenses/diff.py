"""Run diff and fingerprints: what changed between two runs of an agent, step by step.

Each exchange is seen as a ``StepView``: what the model was asked (model, system prompt,
messages with their tool calls and tool results, tools offered) and what it answered
(status, text, tool calls with their arguments, stop reason, tokens, cost). Volatile
fields (ids, timestamps, latency, request ids, the upstream's host and port) are left
out, so two runs of the same behaviour have equal views and equal fingerprints.

Two runs are aligned with a global sequence alignment that pairs identical steps first,
then identical requests (the same question answered differently is one "changed" step), then
steps with the same signature (endpoint, model, and what kind of answer came back), so a
retried or extra step shows as inserted and the steps after it still line up.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from seamtape._steps import steps_of
from seamtape.tape import Tape

__all__ = [
    "VOLATILE_KEYS",
    "Change",
    "RunDiff",
    "RunSide",
    "StepPair",
    "StepView",
    "align",
    "diff",
    "edit_distance",
    "fingerprint",
    "json_changes",
    "load_views",
    "scrub",
    "step_view",
]

# JSON keys whose values change from one recording of the same behaviour to the next.
VOLATILE_KEYS = frozenset(
    {
        "id",
        "created",
        "created_at",
        "createTime",
        "timestamp",
        "request_id",
        "requestId",
        "response_id",
        "responseId",
        "system_fingerprint",
        "tool_use_id",
        "tool_call_id",
        "call_id",
        "item_id",
        "latency",
        "latency_ms",
        "processing_ms",
    }
)

_GAP = -1  # an inserted or dropped step
# Identical steps pair first, then identical requests (a changed answer: "changed", not a
# drop and an insert), then steps of the same endpoint, model and kind of answer.
_SCORE_EQUAL, _SCORE_REQUEST, _SCORE_SIGNATURE, _SCORE_ENDPOINT, _SCORE_APART = 6, 5, 2, 0, -3


# -- one step ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    """One exchange as the diff sees it, without volatile fields."""

    seq: int
    method: str
    path: str  # path and query; the host is the upstream's, which moves between recordings
    doc: dict[str, Any]  # {"request": {...}, "response": {...}}, compared leaf by leaf
    tools: tuple[str, ...] = ()  # the tool calls the answer made, by name
    answer: str = ""  # "tool_use: get_weather", "text", "error 429", ...

    @property
    def signature(self) -> tuple[str, str, str, str]:
        """What alignment matches on: the endpoint, the model, and the kind of answer."""
        return (self.method, self.path, str(self.doc["request"].get("model", "")), self.answer)

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the view; cost is left out, as it follows from model and tokens."""
        stable = {**self.doc, "response": dict(self.doc["response"])}
        stable["response"].pop("cost_usd", None)
        return _hash(json.dumps([self.method, self.path, stable], sort_keys=True))


def step_view(
    seq: int,
    method: str,
    url: str,
    status: int,
    step: Any,
    *,
    request_body: bytes = b"",
    response_body: bytes = b"",
    error: dict[str, str] | None = None,
) -> StepView:
    """The view of one exchange from its decoded ``wire.Step`` (None when no codec applies,
    in which case the bodies are compared as JSON with volatile keys removed)."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if step is None:
        request = {"body": _scrubbed(request_body)}
        response: dict[str, Any] = {"status": status, "body": _scrubbed(response_body)}
        if error:
            response["error"] = error.get("type", "")
        doc = {"request": request, "response": response}
        return StepView(seq, method, path, doc, (), _failure(status, error))
    calls = [_call(c) for c in step.tool_calls]
    usage = step.usage
    doc = {
        "request": {
            "model": step.model,
            "system": step.system,
            "messages": [_message(m) for m in step.messages],
            "tools": [t.name for t in step.tools],
            "stream": step.stream,
        },
        "response": {
            "status": status,
            "text": step.text,
            "tool_calls": calls,
            "stop_reason": step.stop_reason,
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "cache_write_tokens": usage.cache_write_tokens,
            },
            "cost_usd": step.cost_usd,
        },
    }
    if step.error_type or error:
        doc["response"]["error"] = step.error_type or (error or {}).get("type", "")
    tools = tuple(c["name"] for c in calls)
    answer = _failure(status, error) or ("tool_use: " + ", ".join(tools) if tools else "")
    return StepView(seq, method, path, doc, tools, answer or step.stop_reason or "text")


def _failure(status: int, error: dict[str, str] | None) -> str:
    """How a failed attempt reads in a signature: "error 429", "error ConnectError"."""
    if error and not status:
        return f"error {error.get('type', '')}"
    return f"error {status}" if status >= 400 else ""


def _call(call: Any) -> dict[str, Any]:
    arguments = call.raw_arguments if call.raw_arguments is not None else call.arguments
    return {"name": call.name, "arguments": arguments}


def _message(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "text": message.text}
    if message.tool_calls:
        out["tool_calls"] = [_call(c) for c in message.tool_calls]
    if message.tool_results:
        out["tool_results"] = [
            {"content": r.content, "is_error": r.is_error} for r in message.tool_results
        ]
    return out


def _scrubbed(data: bytes) -> Any:
    """The body as scrubbed JSON; nested too deeply to walk, it is compared as text."""
    try:
        return scrub(_body(data))
    except RecursionError:
        return data.decode("utf-8", "replace")


def _body(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")


def scrub(value: Any) -> Any:
    """A JSON value with the values of volatile keys (``VOLATILE_KEYS``) removed, recursively."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(views: list[StepView]) -> str:
    """A run's behaviour as one hash: equal for two runs whose steps have equal views."""
    return _hash("\n".join(v.fingerprint for v in views))


# -- alignment ---------------------------------------------------------------------------


@dataclass
class Change:
    """One leaf that differs between two aligned steps; ``"<absent>"`` stands for no value."""

    path: str
    a: Any
    b: Any


@dataclass
class StepPair:
    """A step of run A aligned with a step of run B (either may be missing)."""

    a: StepView | None
    b: StepView | None
    changes: list[Change] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """``same``, ``changed``, ``inserted`` (only in B) or ``dropped`` (only in A)."""
        if self.a is None:
            return "inserted"
        if self.b is None:
            return "dropped"
        return "changed" if self.changes else "same"


def align(a: list[StepView], b: list[StepView]) -> list[StepPair]:
    """Needleman-Wunsch over the two runs: equal steps score highest, then equal signatures,
    then the same endpoint; everything else is cheaper as an inserted plus a dropped step."""
    n, m = len(a), len(b)
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        score[i][0] = i * _GAP
    for j in range(1, m + 1):
        score[0][j] = j * _GAP
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            score[i][j] = max(
                score[i - 1][j - 1] + _similarity(a[i - 1], b[j - 1]),
                score[i - 1][j] + _GAP,
                score[i][j - 1] + _GAP,
            )
    pairs: list[StepPair] = []
    i, j = n, m
    while i or j:
        if i and j and score[i][j] == score[i - 1][j - 1] + _similarity(a[i - 1], b[j - 1]):
            pairs.append(StepPair(a[i - 1], b[j - 1], json_changes(a[i - 1].doc, b[j - 1].doc)))
            i, j = i - 1, j - 1
        elif i and score[i][j] == score[i - 1][j] + _GAP:
            pairs.append(StepPair(a[i - 1], None))
            i -= 1
        else:
            pairs.append(StepPair(None, b[j - 1]))
            j -= 1
    return pairs[::-1]


def _similarity(x: StepView, y: StepView) -> int:
    if x.fingerprint == y.fingerprint:
        return _SCORE_EQUAL
    if x.method == y.method and x.path == y.path and x.doc["request"] == y.doc["request"]:
        return _SCORE_REQUEST
    if x.signature == y.signature:
        return _SCORE_SIGNATURE
    if x.signature[:3] == y.signature[:3]:
        return _SCORE_ENDPOINT
    return _SCORE_APART


_ABSENT = "<absent>"


def json_changes(a: Any, b: Any, path: str = "$") -> list[Change]:
    """Every leaf where two JSON values differ, as JSON paths, in document order."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[Change] = []
        for key in list(a) + [k for k in b if k not in a]:
            child = f"{path}.{key}" if str(key).isidentifier() else f"{path}[{json.dumps(key)}]"
            found += json_changes(a.get(key, _ABSENT), b.get(key, _ABSENT), child)
        return found
    if isinstance(a, list) and isinstance(b, list):
        found = []
        for i in range(max(len(a), len(b))):
            found += json_changes(
                a[i] if i < len(a) else _ABSENT, b[i] if i < len(b) else _ABSENT, f"{path}[{i}]"
            )
        return found
    if type(a) is type(b) and a == b:
        return []
    return [Change(path, a, b)]


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two sequences (insert, delete, substitute: 1 each)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


# -- two runs ----------------------------------------------------------------------------


@dataclass
class RunSide:
    """One run of the diff: where it came from and what it amounts to."""

    tape: str
    run: str
    name: str | None
    views: list[StepView]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.views)

    @property
    def tools(self) -> list[str]:
        return [name for v in self.views for name in v.tools]

    @property
    def tokens(self) -> tuple[int, int]:
        usage = [v.doc["response"].get("usage") or {} for v in self.views]
        return (
            sum(u.get("input_tokens", 0) for u in usage),
            sum(u.get("output_tokens", 0) for u in usage),
        )

    @property
    def cost_usd(self) -> float:
        return sum(v.doc["response"].get("cost_usd") or 0.0 for v in self.views)


@dataclass
class RunDiff:
    a: RunSide
    b: RunSide
    pairs: list[StepPair]

    @property
    def equal(self) -> bool:
        """Same behaviour: equal fingerprints (volatile fields aside, every step equal)."""
        return self.a.fingerprint == self.b.fingerprint

    @property
    def first(self) -> StepPair | None:
        """The first divergence: the first aligned pair that is not the same step."""
        return next((p for p in self.pairs if p.kind != "same"), None)

    @property
    def tool_distance(self) -> int:
        """Edit distance between the two runs' tool-call sequences."""
        return edit_distance(self.a.tools, self.b.tools)

    def to_text(self, *, limit: int = 20) -> str:
        """The diff as a person reads it: the first divergence and what changed there (at
        most ``limit`` paths), the alignment, the trajectories and the fingerprints."""
        lines = [_side_line("A", self.a), _side_line("B", self.b), ""]
        first = self.first
        if first is None:
            lines.append("no divergence: every step has the same behaviour")
        else:
            lines.append(f"first divergence: {_pair_line(first)}")
            for change in first.changes[:limit]:
                lines += [
                    f"  {change.path}",
                    f"    A: {_value(change.a)}",
                    f"    B: {_value(change.b)}",
                ]
            if len(first.changes) > limit:
                lines.append(f"  … and {len(first.changes) - limit} more")
            lone = first.a or first.b
            if not first.changes and lone is not None:
                lines.append(f"  answer: {lone.answer}")
        lines += ["", "steps:", "    A     B"]
        for pair in self.pairs:
            a = str(pair.a.seq) if pair.a else "-"
            b = str(pair.b.seq) if pair.b else "-"
            view = pair.b or pair.a
            answer = view.answer if view else ""
            extra = f" ({_fields(len(pair.changes))})" if pair.changes else ""
            lines.append(f"  {a:>3}   {b:>3}   {pair.kind:<9} {answer}{extra}")
        lines += [
            "",
            "trajectory:",
            f"  A: {' → '.join(self.a.tools) or '(no tool calls)'}",
            f"  B: {' → '.join(self.b.tools) or '(no tool calls)'}",
            f"  tool-call edit distance: {self.tool_distance}",
            f"  tokens A {_tokens(self.a)} · B {_tokens(self.b)}",
            "",
            f"fingerprint A {self.a.fingerprint[:16]} · B {self.b.fingerprint[:16]}: "
            + ("same behaviour" if self.equal else "different"),
        ]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        first = self.first
        return {
            "equal": self.equal,
            "a": _side_dict(self.a),
            "b": _side_dict(self.b),
            "first_divergence": None if first is None else _pair_dict(first),
            "alignment": [
                {"a": p.a.seq if p.a else None, "b": p.b.seq if p.b else None, "kind": p.kind}
                for p in self.pairs
            ],
            "tool_edit_distance": self.tool_distance,
        }


def _side_line(label: str, side: RunSide) -> str:
    name = f" ({side.name})" if side.name else ""
    return f"{label}  {side.tape} run {side.run}{name}: {len(side.views)} steps"


def _pair_line(pair: StepPair) -> str:
    if pair.a is None and pair.b is not None:
        return f"step {pair.b.seq} of B was inserted (A has no such step)"
    if pair.b is None and pair.a is not None:
        return f"step {pair.a.seq} of A was dropped (B has no such step)"
    assert pair.a is not None and pair.b is not None
    what = "the answer changed" if pair.a.doc["request"] == pair.b.doc["request"] else "changed"
    return f"step {pair.a.seq} of A ↔ step {pair.b.seq} of B: {what} ({_fields(len(pair.changes))})"


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def _value(value: Any, limit: int = 300) -> str:
    text = value if value == _ABSENT else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tokens(side: RunSide) -> str:
    tokens = side.tokens
    return f"{tokens[0]} in / {tokens[1]} out (${side.cost_usd:.6f})"


def _side_dict(side: RunSide) -> dict[str, Any]:
    tokens = side.tokens
    return {
        "tape": side.tape,
        "run": side.run,
        "name": side.name,
        "steps": len(side.views),
        "fingerprint": side.fingerprint,
        "tools": side.tools,
        "tokens": {"input": tokens[0], "output": tokens[1]},
        "cost_usd": round(side.cost_usd, 8),
    }


def _pair_dict(pair: StepPair) -> dict[str, Any]:
    return {
        "a": pair.a.seq if pair.a else None,
        "b": pair.b.seq if pair.b else None,
        "kind": pair.kind,
        "changes": [{"path": c.path, "a": c.a, "b": c.b} for c in pair.changes],
    }


def load_views(tape: Any, run_id: str) -> list[StepView]:
    """The views of a run's steps, read from an open ``Tape``."""
    exchanges = tape.exchanges(run_id)
    steps = steps_of(tape, run_id)
    return [
        step_view(
            ex.seq,
            ex.method,
            ex.url,
            ex.status,
            step,
            request_body=b"" if step is not None else ex.request_bytes(),
            response_body=b"" if step is not None else ex.response_bytes(),
            error=ex.error,
        )
        for ex, step in zip(exchanges, steps, strict=True)
    ]


def _side(path: str | os.PathLike[str], run: str | None) -> RunSide:
    with Tape(path) as tape:
        info = tape.run(run)
        return RunSide(os.fspath(path), info.id, info.name, load_views(tape, info.id))


def diff(
    tape_a: str | os.PathLike[str],
    tape_b: str | os.PathLike[str] | None = None,
    *,
    run_a: str | None = None,
    run_b: str | None = None,
) -> RunDiff:
    """Compare run ``run_a`` of ``tape_a`` with run ``run_b`` of ``tape_b`` (the same tape
    when omitted); a run is an id, id prefix or name, by default the tape's latest recorded
    run (not a fork)."""
    a = _side(tape_a, run_a)
    b = _side(tape_a if tape_b is None else tape_b, run_b)
    return RunDiff(a, b, align(a.views, b.views))
