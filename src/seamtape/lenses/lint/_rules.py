"""The rules: pure functions of a ``Trace`` and the configuration, yielding findings.

Each rule is registered with its id, family, default severity, a one-sentence trigger and its
parameters (with defaults); docs/lint-rules.md is the long form of the same table.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import posixpath
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from seamtape import wire

from ._config import Config
from ._findings import Finding, rank
from ._registry import INT, PAIRS, SEQUENCES, SHARE, STRINGS, Param, rule
from ._streams import stream_problems
from ._trace import Call, Trace, Turn

_OFF = {"type": ["number", "null"], "minimum": 0}
_OFF_INT = {"type": ["integer", "null"], "minimum": 0}
_WARN_AT = Param(0.9, SHARE, "share of the budget at which a warning fires")


def _finding(
    cfg: Config,
    rule_id: str,
    message: str,
    steps: Iterable[int],
    key: str,
    *,
    severity: str | None = None,
    **data: Any,
) -> Finding:
    ordered = tuple(sorted(set(steps)))
    return Finding(rule_id, severity or cfg.severity(rule_id), message, ordered, key, data)


def _in_conversation(trace: Trace) -> dict[str, list[Call]]:
    grouped: dict[str, list[Call]] = {}
    for call in trace.calls:
        grouped.setdefault(call.conversation, []).append(call)
    return grouped


def _succeeded(call: Call) -> bool:
    return call.result is not None and not call.failure


def _failed(call: Call) -> str:
    return call.failure


# --- retries and loops ------------------------------------------------------------------------


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


# --- silent failure and delegation -----------------------------------------------------------

_ACK = re.compile(
    r"\b(error|errors|fail|fails|failed|failure|unable|could not|couldn'?t|cannot|can'?t|"
    r"not available|unavailable|sorry|problem|issue|empty|no results?|no data|did not work|"
    r"didn'?t work|went wrong|timed? ?out)\b",
    re.IGNORECASE,
)


@rule(
    "silent-failure",
    "failures",
    "warn",
    "a tool result is an error or empty, the model's next answer carries on as if it had "
    "succeeded, and nothing later in the conversation mentions it or calls that tool again",
)
def silent_failure(trace: Trace, cfg: Config) -> Iterator[Finding]:
    by_seq = {t.seq: t for t in trace.turns}
    for call in trace.calls:
        why = _failed(call)
        carried = call.result_step
        if not why or carried is None:
            continue
        answer = by_seq.get(carried)
        if answer is None or not answer.answered:
            continue  # the next turn has not answered yet (live) or failed itself
        later = [t for t in trace.conversation_turns(call.conversation) if t.seq >= carried]
        texts = [t.step.text for t in later if t.answered and t.step is not None]
        retried = any(c.name == call.name for c in trace.calls if c.index > call.index)
        if retried or any(_ACK.search(text) for text in texts):
            continue
        yield _finding(
            cfg,
            "silent-failure",
            f"{call.name} returned an {why} result (sent at step {carried}) and the model "
            "carried on as if it had succeeded; nothing later in the run acknowledges it",
            (call.step, carried),
            call.key,
        )


def _delegates(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def delegation_tree(trace: Trace, cfg: Config) -> dict[str, tuple[str | None, Call | None]]:
    """conversation -> (its parent conversation, the delegation call that opened it)."""
    patterns = cfg["recursive-delegation"]["delegation_tools"]
    tree: dict[str, tuple[str | None, Call | None]] = {}
    delegations = [c for c in trace.calls if _delegates(c.name, patterns)]
    for turn in trace.turns:
        if not turn.conversation or turn.conversation in tree:
            continue
        open_calls = [
            c
            for c in delegations
            if c.step < turn.seq
            and c.conversation != turn.conversation
            and (c.result_step is None or c.result_step > turn.seq)
        ]
        opener = max(open_calls, key=lambda c: c.index) if turn.fresh and open_calls else None
        tree[turn.conversation] = (opener.conversation if opener else None, opener)
    return tree


@rule(
    "recursive-delegation",
    "delegation",
    "critical",
    "a sub-agent (told apart by its system prompt and tool set) opened by a delegation tool "
    "is the delegating agent itself or one of its ancestors",
    delegation_tools=Param(
        ["delegate", "delegate_*", "transfer_to_*", "handoff*", "spawn_agent", "run_agent"],
        STRINGS,
        "names (glob patterns) of the tools that hand work to a sub-agent",
    ),
)
def recursive_delegation(trace: Trace, cfg: Config) -> Iterator[Finding]:
    tree = delegation_tree(trace, cfg)
    agents = {t.conversation: t.agent for t in trace.turns if t.conversation}
    first: dict[str, int] = {}
    for t in trace.turns:
        first.setdefault(t.conversation, t.seq)
    for conversation, (parent, opener) in tree.items():
        if parent is None or opener is None:
            continue
        chain: list[str] = []
        seen: str | None = parent
        while seen is not None and seen not in chain:
            chain.append(seen)
            seen = tree.get(seen, (None, None))[0]
        if agents.get(conversation) in {agents.get(a) for a in chain}:
            kind = "itself" if agents.get(parent) == agents.get(conversation) else "an ancestor"
            yield _finding(
                cfg,
                "recursive-delegation",
                f"{opener.name} handed work to {kind}: the sub-agent opened at step "
                f"{first[conversation]} has the same system prompt and tools as its "
                f"{'parent' if kind == 'itself' else 'ancestor'} (depth {len(chain)})",
                (opener.step, first[conversation]),
                f"{opener.name} depth {len(chain)}",
            )


@rule(
    "delegation-depth",
    "delegation",
    "warn",
    "sub-agents are nested deeper than `max_depth` (delegation tools as in recursive-delegation)",
    max_depth=Param(3, INT, "deepest nesting of sub-agents allowed"),
)
def delegation_depth(trace: Trace, cfg: Config) -> Iterator[Finding]:
    limit = cfg["delegation-depth"]["max_depth"]
    tree = delegation_tree(trace, cfg)
    for conversation, (parent, opener) in tree.items():
        depth, seen, chain = 0, parent, set()
        while seen is not None and seen not in chain:
            chain.add(seen)
            depth += 1
            seen = tree.get(seen, (None, None))[0]
        if depth == limit + 1 and opener is not None:  # the first level past the limit
            first = min(t.seq for t in trace.turns if t.conversation == conversation)
            yield _finding(
                cfg,
                "delegation-depth",
                f"sub-agents are nested {depth} deep (limit {limit}): {opener.name} at step "
                f"{opener.step} opened one more level",
                (opener.step, first),
                f"depth {depth} {opener.name}",
            )


# --- policy gates ---------------------------------------------------------------------------


@rule(
    "tool-policy",
    "policy",
    "critical",
    "a call of a tool that `deny` names, or, when `allow` is set, that it does not name "
    "(glob patterns)",
    allow=Param([], STRINGS, "tools that may be called; empty: every tool"),
    deny=Param([], STRINGS, "tools that must never be called"),
)
def tool_policy(trace: Trace, cfg: Config) -> Iterator[Finding]:
    params = cfg["tool-policy"]
    for call in trace.calls:
        if _delegates(call.name, params["deny"]):
            why = "is denied"
        elif params["allow"] and not _delegates(call.name, params["allow"]):
            why = "is not on the allow list"
        else:
            continue
        yield _finding(
            cfg, "tool-policy", f"the model called {call.name}, which {why}", [call.step], call.key
        )


@rule(
    "undeclared-tool",
    "policy",
    "critical",
    "the model calls a tool that the same request did not declare",
)
def undeclared_tool(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for call in trace.calls:
        if call.declared is None:
            yield _finding(
                cfg,
                "undeclared-tool",
                f"the model called {call.name}, which the request did not declare",
                [call.step],
                call.key,
            )


def schema_error(call: Call) -> str:
    """Why a call's arguments fail the schema its request declared, or ""."""
    if call.declared is None:
        return ""
    if call.call.raw_arguments is not None:
        return "the arguments are not a JSON object"
    if not call.declared.schema:
        return ""
    dump = functools.partial(json.dumps, sort_keys=True, separators=(",", ":"), default=str)
    return _schema_problem(dump(call.declared.schema), dump(call.call.arguments))


@functools.lru_cache(maxsize=4096)
def _schema_problem(schema_json: str, arguments_json: str) -> str:
    """Cached: a guard re-reads the whole run before every request."""
    import jsonschema

    schema, arguments = json.loads(schema_json), json.loads(arguments_json)
    try:
        validator_class = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft202012Validator
        )
        error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(arguments))
    except (jsonschema.exceptions.SchemaError, TypeError):
        return ""  # a schema the request declared but no validator reads is not the call's fault
    if error is None:
        return ""
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{error.message}" + (f" (at {where})" if where else "")


@rule(
    "tool-schema",
    "policy",
    "warn",
    "a call's arguments fail the JSON schema that the same request declared for the tool",
)
def tool_schema(trace: Trace, cfg: Config) -> Iterator[Finding]:
    for call in trace.calls:
        problem = schema_error(call)
        if problem:
            yield _finding(
                cfg,
                "tool-schema",
                f"{call.name} was called with arguments that fail its schema: {problem}",
                [call.step],
                call.key,
            )


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(argument name, string value) for every string inside a call's arguments."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


@rule(
    "url-host",
    "policy",
    "critical",
    "a URL in a call's arguments names a host that `allowed_hosts` does not match (off while "
    "`allowed_hosts` is empty)",
    allowed_hosts=Param([], STRINGS, "host names or glob patterns, e.g. *.example.com"),
)
def url_host(trace: Trace, cfg: Config) -> Iterator[Finding]:
    allowed = [h.lower() for h in cfg["url-host"]["allowed_hosts"]]
    if not allowed:
        return
    for call in trace.calls:
        for _, text in _strings(call.call.arguments):
            parts = urlsplit(text.strip())
            if (
                parts.scheme.lower() not in ("http", "https", "ws", "wss", "ftp")
                or not parts.netloc
            ):
                continue
            host = (parts.hostname or "").lower()
            if not any(fnmatch.fnmatchcase(host, pattern) for pattern in allowed):
                yield _finding(
                    cfg,
                    "url-host",
                    f"{call.name} was given a URL on {host}, which is not an allowed host",
                    [call.step],
                    f"{call.name} {host}",
                )


_PATH_KEYS = ["path", "file", "filename", "filepath", "dir", "directory", "cwd", "dest", "src"]


@rule(
    "sandbox-path",
    "policy",
    "critical",
    "a path argument (named in `keys`, or ending in _path, _file, _dir) resolves outside "
    "`root` (off while `root` is empty)",
    root=Param("", {"type": "string"}, "the sandbox directory, e.g. /workspace"),
    keys=Param(_PATH_KEYS, STRINGS, "argument names that hold paths"),
)
def sandbox_path(trace: Trace, cfg: Config) -> Iterator[Finding]:
    params = cfg["sandbox-path"]
    root = posixpath.normpath(params["root"]) if params["root"] else ""
    if not root:
        return
    keys = {k.lower() for k in params["keys"]}
    for call in trace.calls:
        for name, text in _strings(call.call.arguments):
            lowered = name.lower()
            if lowered not in keys and not lowered.endswith(("_path", "_file", "_dir")):
                continue
            if text.startswith("~"):
                resolved = text
            else:
                resolved = posixpath.normpath(posixpath.join(root, text))
            inside = resolved == root or resolved.startswith(root.rstrip("/") + "/")
            if not inside:
                yield _finding(
                    cfg,
                    "sandbox-path",
                    f"{call.name} was given {name}={text!r}, outside the sandbox {root}",
                    [call.step],
                    f"{call.name} {name}={text}",
                )


# --- contracts --------------------------------------------------------------------------------


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


# --- budgets ----------------------------------------------------------------------------------


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


# --- failure modes ---------------------------------------------------------------------------

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


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
