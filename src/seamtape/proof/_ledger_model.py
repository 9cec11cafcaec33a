"""The simulated auditor: the model policy of the ledger world, with its planted blind spots
(docs/blame.md, "The injected-fault worlds")."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from seamtape.sim.policies import Draws, answer, conversation_key
from seamtape.wire import ToolCall

__all__ = ["BEHAVIOURS", "NOTICE", "RULE_ALL", "RULE_OPEN", "LedgerModel"]

RULE_OPEN = "sum the open accounts, in EUR"
RULE_ALL = "sum all accounts, in EUR"

# How a departure behaves (weights) and how often a careful reading notices each problem.
BEHAVIOURS = (("careful", 0.90), ("reorder", 0.05), ("audit", 0.03), ("slip", 0.02))
NOTICE = {"empty": 0.97, "corrupt": 0.97, "stale": 0.97, "mismatch": 0.20, "trap": 0.97}


@dataclass
class _Record:
    account: str  # whom the model meant to read
    value: int
    status: str
    problems: list[str] = field(default_factory=list)  # what a careful reader could notice
    fixed: tuple[int, str] | None = None  # what a careful reader takes instead, if it can
    requery: dict[str, Any] | None = None  # the call a careful reader makes instead


@dataclass
class _View:
    """What the model knows at a request, parsed from the conversation."""

    accounts: list[tuple[str, str]]
    turns: int
    called: list[str]
    total: int
    rule: str
    last_call: Any
    last_intended: str | None
    last_result: Any
    records: list[_Record]


_ACCOUNT = re.compile(r"(acct-\d+) \((ledger|archive)\)")
_TOTAL = re.compile(r"^Total so far: (-?\d+) EUR\.$", re.M)
_RULE = re.compile(r"^Rule: (.*)\.$", re.M)
_NEXT = re.compile(r"^Next: (acct-\d+)", re.M)
_LEDGER = re.compile(
    r"ref LDG-(\d+)-\w+ · balance (-?\d+) EUR · status (\w+) · transactions (-?\d+) EUR"
)
_STATEMENT = re.compile(
    r"\[(\d{4}-\d\d-\d\d)\] (acct-\d+) statement: balance (-?\d+) EUR, status (\w+)"
)

_ASIDES = (
    "moving on",
    "the figures line up so far",
    "keeping a running tally",
    "one account at a time",
    "nothing unusual yet",
    "cross-checking as I go",
    "the ledger is responsive",
    "continuing the audit",
)


class LedgerModel:
    """The simulated auditor: greedy by default, departing on resamples like ``StochasticPolicy``.

    ``seed`` and ``temperature`` mean what they mean there: a live request that repeats a
    conversation this policy has answered k times gets sample index k and departs from the
    greedy answer with probability ``temperature``. ``traps`` and ``slips`` are the model's
    planted blind spots (see the module docstring); it reads nothing else from the world.
    """

    def __init__(
        self,
        seed: int = 0,
        temperature: float = 0.8,
        *,
        traps: Sequence[tuple[str, str]] = (),
        slips: Sequence[tuple[int, tuple[str, ...]]] = (),
        sample_every: bool = False,
    ) -> None:
        self.seed = seed
        self.temperature = temperature
        self.traps = dict(traps)
        self.slips = {(turn, tuple(called)) for turn, called in slips}
        # False: only a repeat of a conversation is sampled (a fork's tail is deterministic);
        # True: every live call is sampled at ``temperature``, as a provider samples.
        self.sample_every = sample_every
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def respond(self, step: Any) -> Any:
        key = conversation_key(step)
        with self._lock:
            index = self._seen.get(key, 0)
            self._seen[key] = index + 1
        behaviour = "greedy"
        draws = Draws(self.seed, _semantic_key(step), "greedy")
        departs = (index > 0 or self.sample_every) and self.temperature > 0
        if departs and Draws(self.seed, key, "depart", index).uniform() < self.temperature:
            draws = Draws(self.seed, key, "sample", index)
            behaviour = _pick(draws.uniform())
        view = _read(step)
        if view is None:
            return _answer(step, "Please give me an audit task.", [])
        return self._act(step, view, behaviour, draws)

    def _act(self, step: Any, view: _View, behaviour: str, draws: Any) -> Any:
        greedy = behaviour == "greedy"
        rule = view.rule
        if greedy and (view.turns, tuple(view.called)) in self.slips:
            rule = RULE_ALL  # the planted slip: this situation makes the greedy model misstate it
        elif behaviour == "audit":
            rule = RULE_OPEN
        lines: list[str] = []
        total = view.total
        call: dict[str, Any] | None = None
        requery = False
        careful = behaviour in ("careful", "audit")
        record = view.records[-1] if view.last_result is not None and view.records else None
        if view.last_result is not None and view.last_result.is_error:
            who = view.last_intended or "the account"
            lines.append(f"{who}: the lookup failed ({view.last_result.content}); retrying.")
            call = {"name": view.last_call.name, "arguments": dict(view.last_call.arguments)}
        elif record is not None:
            noticed = [p for p in record.problems if careful and draws.uniform() < NOTICE[p]]
            requery = bool(noticed) and record.requery is not None
            if requery:
                lines.append(_requery_note(record, noticed[0]))
                call = record.requery
            else:
                value, status = (
                    record.fixed if (noticed and record.fixed) else (record.value, record.status)
                )
                counted = status == "open" or rule == RULE_ALL
                lines.append(
                    f"{record.account}: {value} EUR, {status} "
                    f"({'counted' if counted else 'not counted'})."
                )
                total += value if counted else 0
        else:
            lines.append(f"Starting the audit of {len(view.accounts)} accounts.")
        if behaviour == "audit":
            total = _recount(view, rule, draws, skip_last=requery)
            lines.append("Recounted the running total from every record so far.")
        if behaviour == "slip":
            total += 10
        lines.append(f"Total so far: {total} EUR.")
        lines.append(f"Rule: {rule}.")
        if call is None:
            pending = [a for a, _ in view.accounts if a not in view.called]
            if not pending:
                lines[-2:] = [f"TOTAL: {total} EUR"]
                lines.append(_aside(draws))
                return _answer(step, "\n".join(lines), [])
            who = pending[0]
            if behaviour == "reorder" and len(pending) > 1:
                who = draws.choice(pending[1:])
            source = dict(view.accounts)[who]
            if source == "archive":
                call = {"name": "search", "arguments": {"query": f"{who} statement"}}
            else:
                argument = who
                trap = self.traps.get(who)
                if trap and (greedy or draws.uniform() >= NOTICE["trap"]):
                    argument = trap  # the planted blind spot: greedy reaches for the lookalike
                call = {"name": "lookup", "arguments": {"account": argument}}
            lines.append(f"Next: {who}.")
        else:
            lines.append(f"Next: {view.last_intended}.")
        lines.append(_aside(draws))
        return _answer(step, "\n".join(lines), [call])


def _pick(u: float) -> str:
    for name, weight in BEHAVIOURS:
        if u < weight:
            return name
        u -= weight
    return BEHAVIOURS[0][0]


def _aside(draws: Any) -> str:
    return f"~ {draws.choice(_ASIDES)} [{draws.hex(6)}]"


def _requery_note(record: _Record, problem: str) -> str:
    if problem == "empty":
        return f"{record.account}: the result came back empty; asking again."
    if problem == "corrupt":
        return f"{record.account}: the record looks corrupted (balance and transactions disagree); re-checking."
    return f"{record.account}: that record is for another account; asking again."


def _semantic_key(step: Any) -> str:
    """The conversation as the model's decisions see it: its ``~`` asides left out."""

    def plain(message: Any) -> Any:
        if message.role != "assistant":
            return message
        kept = "\n".join(line for line in message.text.split("\n") if not line.startswith("~"))
        return replace(message, text=kept)

    return conversation_key(replace(step, messages=[plain(m) for m in step.messages]))


def _answer(step: Any, text: str, calls: list[dict[str, Any]]) -> Any:
    digest = hashlib.sha256(
        json.dumps([_semantic_key(step), text, calls], sort_keys=True).encode()
    ).hexdigest()
    tool_calls = [
        ToolCall(id=f"toolu_{digest[:20]}{i}", name=c["name"], arguments=c["arguments"])
        for i, c in enumerate(calls)
    ]
    return answer(step, text=text, tool_calls=tool_calls, response_id=f"msg_{digest[:24]}")


def _read(step: Any) -> _View | None:
    """Parse the task, the model's own notes and the tool traffic out of a request."""
    users = [m for m in step.messages if m.role == "user" and m.text]
    accounts = _ACCOUNT.findall(users[0].text) if users else []
    if not accounts:
        return None
    names = {a for a, _ in accounts}
    total, rule = 0, RULE_OPEN
    called: list[str] = []
    intended: dict[str, str] = {}  # call id -> account the model meant
    calls: dict[str, Any] = {}
    records: list[_Record] = []
    turns = 0
    last_call = last_intended = last_result = None
    for message in step.messages:
        if message.role == "assistant":
            turns += 1
            text = message.text
            if (found := _TOTAL.search(text)) is not None:
                total = int(found.group(1))
            if (found := _RULE.search(text)) is not None:
                rule = found.group(1)
            meant = _NEXT.search(text)
            for call in message.tool_calls:
                target = meant.group(1) if meant else _target(call)
                if target and target in names and target not in called:
                    called.append(target)
                intended[call.id] = target or ""
                calls[call.id] = call
            last_result = None
        for result in message.tool_results:
            call = calls.get(result.call_id)
            if call is None:
                continue
            last_call, last_intended, last_result = call, intended[result.call_id], result
            if not result.is_error:
                records.append(_parse(call, result.content, intended[result.call_id]))
    return _View(
        accounts=accounts,
        turns=turns,
        called=called,
        total=total,
        rule=rule,
        last_call=last_call,
        last_intended=last_intended,
        last_result=last_result,
        records=records,
    )


def _target(call: Any) -> str | None:
    text = str(call.arguments.get("account") or call.arguments.get("query") or "")
    found = re.search(r"acct-\d+", text)
    return found.group(0) if found else None


def _parse(call: Any, content: str, account: str) -> _Record:
    """A record as greedy reads it, with what a careful reader could notice and do instead."""
    if not content.strip():
        again = {"name": call.name, "arguments": dict(call.arguments)}
        return _Record(account, 0, "missing", ["empty"], requery=again)
    if call.name == "search":
        lines = _STATEMENT.findall(content)
        if not lines:
            return _Record(account, 0, "closed")
        first = lines[0]
        record = _Record(account, int(first[2]), first[3])
        newest = max(lines, key=lambda line: line[0])
        if newest[0] != first[0]:
            record.problems.append("stale")
            record.fixed = (int(newest[2]), newest[3])
        return record
    found = _LEDGER.search(content)
    if found is None:
        return _Record(account, 0, "closed")
    digits, balance, status, transactions = found.groups()
    record = _Record(account, int(balance), status)
    if int(balance) != int(transactions):
        record.problems.append("corrupt")
        record.fixed = (int(transactions), status)
        record.requery = {"name": "lookup", "arguments": {"account": account, "verify": True}}
    if not account.endswith("-" + digits):
        record.problems.append("mismatch")
        record.requery = {"name": "lookup", "arguments": {"account": account}}
    return record


def _recount(view: _View, rule: str, draws: Any, *, skip_last: bool) -> int:
    """The running total re-derived from every record in sight, read carefully."""
    latest: dict[str, tuple[int, str]] = {}
    records = view.records[:-1] if skip_last else view.records
    for record in records:
        value, status = record.value, record.status
        noticed = record.problems and draws.uniform() < NOTICE[record.problems[0]]
        if noticed and record.fixed:
            value, status = record.fixed
        latest[record.account] = (value, status)
    return sum(v for v, s in latest.values() if s == "open" or rule == RULE_ALL)
