"""Injected faults with a known root cause: the fixtures that prove blame right or wrong.

Every fixture is a failed run of a real tool-using agent (the official ``anthropic`` SDK,
pointed at the simulator on 127.0.0.1), recorded into a tape, with the agent and oracle that
reproduce it, the model policy that answers live tails, and the one step that caused it.

The world
---------
The agent audits a ledger: the task lists 2 to 19 accounts; ledger accounts are read with the
``lookup`` tool, archived ones with ``search``; the answer is ``TOTAL: <n> EUR``, the sum of
the *open* accounts' balances, and the oracle compares it with the truth. The model (a
``LedgerModel`` policy, served by the simulator) works one account per turn: each answer
notes the result it was just given ("acct-417: 120 EUR, open (counted)."), carries a running
total and the rule it is following, and calls the tool for the next account. So a run of
``m`` accounts has ``m + 1`` steps, and a mistake made at one step travels down the
conversation in the running total: later steps inherit it.

The model's randomness is ``StochasticPolicy``'s: a request is answered greedily unless it
repeats a conversation this policy has already answered; the k-th repeat gets sample index k
and, with probability ``temperature``, departs from the greedy answer. That is what blame's
``resample`` does at a step: it repeats the step's conversation. A departure is a fresh draw of
how the model behaves on that turn: *careful* (90%: reads the newest result attentively),
*reorder* (5%: picks another pending account), *audit* (3%: re-reads the task and recounts
every record), *slip* (2%: an arithmetic error). Greedy answers depend on what the model
knows (the task, the tool results, its own notes, running total and rule), not on the wording
of its last aside (the ``~`` line, re-drawn on every departure), so a resample that only
rewords a step changes every byte after it, yet leaves the model's later decisions alone. A
departure that changes what the model knows (reorder, audit, slip) can change them.

What "root cause" means, class by class, and why blame can see it
----------------------------------------------------------------
Blame resamples one step and counts how often the outcome flips. A fault planted only in the
recorded bytes would vanish from *every* live tail, so every earlier step would flip too.
Here each fault lives where a re-run meets it again: in the environment (tools, the agent's
memory), or in a greedy blind spot of the model that the same situation triggers again.

- ``corrupted_tool_output``: the ledger returns a corrupted balance for one account on every
  plain ``lookup`` (the ``transactions`` field still shows the true amount; ``verify: true``
  returns a clean record). Root cause: the step whose request first carries that record, the
  step that swallows it into the running total. Greedy trusts the balance; a careful resample
  notices the mismatch (97%) and re-queries. Earlier steps: any re-run reaches the same
  record and trusts it again (no flip); later steps only see the total, already wrong.
- ``misleading_retrieval``: ``search`` ranks a stale statement above the current one for one
  archived account. Root cause: the step that consumes that result. Greedy takes the top hit;
  a careful resample compares dates (97%). Same reasoning as above.
- ``dropped_message``: before one request the agent's memory loses the message that carries
  the latest tool result (a deterministic bug at that point of the run: the result goes out
  empty). Root cause: that request's step, the first to see the hole. Greedy takes the empty
  result as "no record" and counts nothing; a careful resample asks the tool again (97%).
  Earlier steps cannot stop the drop. (Dropping the model's own previous note instead would
  not be identifiable: the drop erases whatever a resample of the previous step changed, so
  the next request repeats the parent's and gets a fresh sample: both steps would look guilty.)
- ``poisoned_tool_argument``: one task account has a lookalike in the ledger (``acct-417`` and
  ``acct-471``), and the greedy model, asked for the first, calls ``lookup`` with the second
  whenever it gets there. Root cause: the step whose tool call carries the wrong account.
  A resample of that step forms the argument afresh and gets it right (97%); the next step
  could notice that the record's reference is another account's but rarely does (20%): a
  weak downstream echo. Earlier resamples reach the same call greedily: no flip.
- ``wrong_instruction``: the model's own slip: in one situation (the same turn, having called
  the same accounts in the same order), its greedy answer restates the task's rule wrongly
  ("sum all accounts") and every later turn follows the rule it last wrote. Root cause: the
  step that wrote the wrong rule. A resample of it copies the rule correctly. A resample of
  an earlier step that only rewords it leads to the same situation and the same slip; one that
  reorders the accounts (5% of departures) leads elsewhere and avoids it: an honest residual
  for blame to rank below the real cause.

Two controls: ``none`` (no fault: the run succeeds; nothing should be blamed) and
``unfixable`` (the ledger misreports an account consistently, verified or not: the run fails
but no step could have done better; nothing should be blamed either).

Everything is a pure function of the seed: same seed, same world, same tape digest (on the
same port, since the URL is part of the digest) and the same root-cause step.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "CONTROLS",
    "KINDS",
    "Account",
    "Design",
    "Fixture",
    "LedgerAgent",
    "LedgerModel",
    "TotalOracle",
    "World",
    "design",
    "planted",
    "positions",
]

KINDS = (
    "corrupted_tool_output",
    "misleading_retrieval",
    "wrong_instruction",
    "dropped_message",
    "poisoned_tool_argument",
)
CONTROLS = ("none", "unfixable")

MIN_STEPS, MAX_STEPS = 3, 20
RULE_OPEN = "sum the open accounts, in EUR"
RULE_ALL = "sum all accounts, in EUR"

# How a departure behaves (weights) and how often a careful reading notices each problem.
BEHAVIOURS = (("careful", 0.90), ("reorder", 0.05), ("audit", 0.03), ("slip", 0.02))
NOTICE = {"empty": 0.97, "corrupt": 0.97, "stale": 0.97, "mismatch": 0.20, "trap": 0.97}


# --- the world --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    name: str  # "acct-417"
    source: str  # "ledger" (read with lookup) | "archive" (read with search)
    balance: int
    status: str  # "open" | "closed"


@dataclass(frozen=True)
class World:
    """The agent's environment and the model's blind spots. The model never reads the truth.

    Environment (the agent's tools and memory): ``corrupt`` maps an account to the balance a
    plain lookup reports; ``stale`` maps an archived account to an older statement that search
    ranks first; ``misreported`` maps an account to a wrong balance the ledger reports
    everywhere; ``flaky`` accounts time out on their first lookup; ``drop_at`` is the 1-based
    request before which the agent's memory loses the latest tool result (0: never).
    Model (the policy): ``traps`` maps an account to the lookalike greedy calls instead;
    ``slips`` lists situations (turn, accounts called so far) where greedy writes the wrong rule.
    """

    task: str
    accounts: tuple[Account, ...]
    lookalikes: tuple[Account, ...] = ()
    corrupt: tuple[tuple[str, int], ...] = ()
    stale: tuple[tuple[str, int, str], ...] = ()
    misreported: tuple[tuple[str, int], ...] = ()
    flaky: tuple[str, ...] = ()
    drop_at: int = 0
    traps: tuple[tuple[str, str], ...] = ()
    slips: tuple[tuple[int, tuple[str, ...]], ...] = ()
    tolerance: int = 0

    @property
    def truth(self) -> int:
        return sum(a.balance for a in self.accounts if a.status == "open")

    def clean(self) -> World:
        """The same world with nothing planted: its run must succeed."""
        return World(self.task, self.accounts, tolerance=self.tolerance)

    def account(self, name: str) -> Account | None:
        return next((a for a in (*self.accounts, *self.lookalikes) if a.name == name), None)


def task_text(world: World) -> str:
    listed = ", ".join(f"{a.name} ({a.source})" for a in world.accounts)
    return (
        f"Audit task {world.task}. Accounts: {listed}. Read ledger accounts with `lookup` and "
        "archived accounts with `search`, one at a time; then report the total balance of the "
        "open accounts as 'TOTAL: <amount> EUR'."
    )


SYSTEM = "You are a careful ledger auditor. Use the tools; never guess a balance."

TOOLS = [
    {
        "name": "lookup",
        "description": "Read a ledger account's record.",
        "input_schema": {
            "type": "object",
            "properties": {"account": {"type": "string"}, "verify": {"type": "boolean"}},
            "required": ["account"],
        },
    },
    {
        "name": "search",
        "description": "Search the archive of account statements.",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
]


def _ref(name: str) -> str:
    digits = name.rsplit("-", 1)[-1]
    return f"LDG-{digits}-{hashlib.sha256(name.encode()).hexdigest()[:4]}"


def run_tool(
    world: World, name: str, args: dict[str, Any], calls: dict[str, int]
) -> tuple[str, bool]:
    """The environment: a tool's answer (content, is_error), deterministic given the calls so far."""
    if name == "lookup":
        who = str(args.get("account", ""))
        account = world.account(who)
        if account is None or account.source != "ledger":
            return f"no ledger account {who!r}", True
        calls[who] = calls.get(who, 0) + 1
        if who in world.flaky and calls[who] == 1:
            return "ledger timeout; try again", True
        verify = bool(args.get("verify"))
        balance = dict(world.misreported).get(who, account.balance)
        shown = balance if verify else dict(world.corrupt).get(who, balance)
        tag = " · verified" if verify else ""
        return (
            f"ref {_ref(who)} · balance {shown} EUR · status {account.status} · "
            f"transactions {balance} EUR{tag}",
            False,
        )
    if name == "search":
        query = str(args.get("query", ""))
        found = re.search(r"acct-\d+", query)
        account = world.account(found.group(0)) if found else None
        if account is None or account.source != "archive":
            return "no statements found", False
        current = f"[2024-11-02] {account.name} statement: balance {account.balance} EUR, status {account.status}"
        old = dict((n, (b, s)) for n, b, s in world.stale).get(account.name)
        if old is None:
            older = f"[2019-06-30] {account.name} statement: balance {account.balance + 40} EUR, status open"
            return f"1. {current}\n2. {older}", False
        older = f"[2019-06-30] {account.name} statement: balance {old[0]} EUR, status {old[1]}"
        return f"1. {older}\n2. {current}", False
    return f"unknown tool {name}", True


# --- the agent and the oracle -----------------------------------------------------------------


@dataclass(frozen=True)
class LedgerAgent:
    """The auditing agent: a plain tool loop on the anthropic SDK, calling ``session.upstream``.

    A frozen dataclass so that a process pool can pickle it with its world.
    """

    world: World

    def __call__(self, session: Any) -> dict[str, Any]:
        import anthropic
        import httpx2

        # The inner transport carries live requests; one TLS context per process, because
        # building one loads the CA bundle (~35 ms, more than a fork's whole tail here).
        inner = httpx2.HTTPTransport(verify=_tls_context())
        client = anthropic.Anthropic(
            api_key="sk-sim-not-a-real-key",
            base_url=session.upstream,
            http_client=session.httpx2_client(transport=inner),
            max_retries=0,
        )
        messages: list[dict[str, Any]] = [{"role": "user", "content": task_text(self.world)}]
        calls: dict[str, int] = {}
        limit = 4 * len(self.world.accounts) + 8
        for turn in range(1, limit + 1):
            if turn == self.world.drop_at and messages[-1]["role"] == "user" and turn > 1:
                # The memory bug: the latest tool result is lost; its envelope is kept so
                # that the conversation stays well-formed.
                lost = [{**b, "content": ""} for b in messages[-1]["content"]]
                messages[-1] = {"role": "user", "content": lost}
            reply = client.messages.create(
                model="sim-ledger",
                max_tokens=1024,
                system=SYSTEM,
                tools=TOOLS,
                messages=messages,
            )
            blocks = [b.model_dump(exclude_none=True) for b in reply.content]
            messages.append({"role": "assistant", "content": blocks})
            uses = [b for b in reply.content if b.type == "tool_use"]
            if not uses:
                text = "".join(b.text for b in reply.content if b.type == "text")
                found = re.search(r"TOTAL: (-?\d+) EUR", text)
                return {
                    "answer": text,
                    "total": int(found.group(1)) if found else None,
                    "turns": turn,
                }
            results = []
            for use in uses:
                content, is_error = run_tool(self.world, use.name, dict(use.input), calls)
                block = {"type": "tool_result", "tool_use_id": use.id, "content": content}
                if is_error:
                    block["is_error"] = True
                results.append(block)
            messages.append({"role": "user", "content": results})
        return {"answer": None, "total": None, "turns": limit}


@functools.cache
def _tls_context() -> Any:
    import ssl

    return ssl.create_default_context()


@dataclass(frozen=True)
class TotalOracle:
    """Success when the reported total is within ``tolerance`` EUR of the truth."""

    truth: int
    tolerance: int = 0

    def __call__(self, result: Any) -> bool:
        total = result.get("total") if isinstance(result, dict) else None
        return isinstance(total, int) and abs(total - self.truth) <= self.tolerance


# --- the model --------------------------------------------------------------------------------


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
    ) -> None:
        self.seed = seed
        self.temperature = temperature
        self.traps = dict(traps)
        self.slips = {(turn, tuple(called)) for turn, called in slips}
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def respond(self, step: Any) -> Any:
        from seamtape.sim.policies import Draws, conversation_key

        key = conversation_key(step)
        with self._lock:
            index = self._seen.get(key, 0)
            self._seen[key] = index + 1
        behaviour = "greedy"
        draws = Draws(self.seed, _semantic_key(step), "greedy")
        departs = index > 0 and self.temperature > 0
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
    from seamtape.sim.policies import conversation_key

    def plain(message: Any) -> Any:
        if message.role != "assistant":
            return message
        kept = "\n".join(line for line in message.text.split("\n") if not line.startswith("~"))
        return replace(message, text=kept)

    return conversation_key(replace(step, messages=[plain(m) for m in step.messages]))


def _answer(step: Any, text: str, calls: list[dict[str, Any]]) -> Any:
    from seamtape.sim.policies import answer
    from seamtape.wire import ToolCall

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
                if target in names and target not in called:
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


# --- designing and recording fixtures ---------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """A planned fixture: the world, its fault class, and the planned root-cause step."""

    seed: int
    kind: str
    world: World
    steps: int  # model calls in the recorded run
    root_cause: int | None  # 1-based step; None for the controls


def positions(kind: str, steps: int) -> range:
    """The steps at which a fault of ``kind`` can be the root cause in a run of ``steps``."""
    if kind in ("corrupted_tool_output", "misleading_retrieval", "dropped_message"):
        return range(2, steps + 1)
    if kind == "poisoned_tool_argument":
        return range(1, steps)
    if kind == "wrong_instruction":
        return range(1, steps + 1)
    return range(0)


def design(
    seed: int,
    kind: str,
    *,
    steps: int | None = None,
    position: int | None = None,
    longest: int = MAX_STEPS,
) -> Design:
    """Plan a fixture from ``seed``: run length (3 to ``longest`` steps, 20 at most) and
    fault position at random unless given."""
    from seamtape.sim.policies import Draws

    if kind not in KINDS + CONTROLS:
        raise ValueError(f"unknown fault class {kind!r}; known: {', '.join(KINDS + CONTROLS)}")
    draws = Draws("seamtape.faults", seed, kind)  # a seed namespace: kept so worlds stay the same
    if steps is None:
        steps = MIN_STEPS + draws.below(min(longest, MAX_STEPS) - MIN_STEPS + 1)
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be {MIN_STEPS} to {MAX_STEPS}, not {steps}")
    allowed = positions(kind, steps)
    if kind in KINDS:
        if position is None:
            position = allowed[draws.below(len(allowed))]
        elif position not in allowed:
            raise ValueError(f"{kind} in a {steps}-step run can sit at steps {list(allowed)}")
    accounts = _accounts(draws, steps - 1)
    world = World(task=f"T-{seed:04d}", accounts=tuple(accounts))
    k = position or 0
    if kind == "corrupted_tool_output":
        target = _set(accounts, k - 1, source="ledger", status="open")
        wrong = target.balance + 90 + 10 * draws.below(40)
        world = replace(world, accounts=tuple(accounts), corrupt=((target.name, wrong),))
    elif kind == "misleading_retrieval":
        target = _set(accounts, k - 1, source="archive")
        stale = (target.balance + 60 + 10 * draws.below(30), "open")
        if target.status == "closed":
            stale = (target.balance, "open")
        world = replace(world, accounts=tuple(accounts), stale=((target.name, *stale),))
    elif kind == "dropped_message":
        _set(accounts, k - 1, status="open")
        world = replace(world, accounts=tuple(accounts), drop_at=k)
    elif kind == "poisoned_tool_argument":
        target = _set(accounts, k, source="ledger", status="open")
        twin = _lookalike(target, accounts, draws)
        world = replace(
            world, accounts=tuple(accounts), lookalikes=(twin,), traps=((target.name, twin.name),)
        )
    elif kind == "wrong_instruction":
        first = max(1, k - 1)
        _set(accounts, first + draws.below(len(accounts) - first + 1), status="closed")
        called = tuple(a.name for a in accounts[: k - 1])
        world = replace(world, accounts=tuple(accounts), slips=((k - 1, called),))
    elif kind == "unfixable":
        at = draws.below(len(accounts)) + 1
        target = _set(accounts, at, source="ledger", status="open")
        wrong = target.balance + 100 + 10 * draws.below(20)
        world = replace(world, accounts=tuple(accounts), misreported=((target.name, wrong),))
    return Design(seed, kind, world, steps, position if kind in KINDS else None)


def _accounts(draws: Any, count: int) -> list[Account]:
    numbers: set[int] = set()
    out = []
    while len(out) < count:
        number = 100 + draws.below(900)
        if number in numbers or len(set(str(number))) < 3:
            continue  # distinct digits, so every account has lookalikes free to plant
        numbers.add(number)
        source = "archive" if draws.uniform() < 0.3 else "ledger"
        status = "closed" if draws.uniform() < 0.2 else "open"
        out.append(Account(f"acct-{number}", source, 20 + 5 * draws.below(97), status))
    return out


def _set(accounts: list[Account], index: int, **fields: str) -> Account:
    """Change the 1-based ``index``-th account in place (and return it)."""
    accounts[index - 1] = replace(accounts[index - 1], **fields)
    return accounts[index - 1]


def _lookalike(target: Account, accounts: list[Account], draws: Any) -> Account:
    digits = target.name.rsplit("-", 1)[-1]
    taken = {a.name for a in accounts}
    options = [f"acct-{digits[0]}{digits[2]}{digits[1]}", f"acct-{digits[1]}{digits[0]}{digits[2]}"]
    name = next(o for o in options if o not in taken and not o.startswith("acct-0"))
    balance = target.balance + (50 + 5 * draws.below(40)) * (1 if draws.below(2) else -1)
    return Account(
        name, "ledger", max(balance, 5) if balance != target.balance else balance + 5, "open"
    )


@dataclass
class Fixture:
    """A recorded fixture, live while its ``planted`` block runs (the simulator serves tails)."""

    design: Design
    tape: Path
    run_id: str
    digest: str
    steps: int
    result: Any
    failed: bool
    upstream: str
    agent: LedgerAgent
    oracle: TotalOracle
    policy: LedgerModel

    @property
    def kind(self) -> str:
        return self.design.kind

    @property
    def root_cause(self) -> int | None:
        return self.design.root_cause


@contextlib.contextmanager
def planted(
    plan: Design,
    folder: str | os.PathLike[str],
    *,
    temperature: float = 0.8,
    port: int = 0,
    world: World | None = None,
) -> Iterator[Fixture]:
    """Record ``plan``'s run into a tape in ``folder`` and keep its simulator up for the block.

    ``world`` overrides the plan's world (``plan.world.clean()`` records the clean twin).
    """
    from seamtape import sim
    from seamtape._agents import run_agent
    from seamtape._session import record

    world = world or plan.world
    agent, oracle = LedgerAgent(world), TotalOracle(world.truth, world.tolerance)
    policy = LedgerModel(plan.seed, temperature, traps=world.traps, slips=world.slips)
    at = f"-at{plan.root_cause}" if plan.root_cause else ""
    tape = Path(folder) / f"{plan.kind}-{plan.seed}-{plan.steps}{at}.tape"
    with sim.serve(policy, port=port) as server:
        with record(
            tape, name=f"{plan.kind} seed {plan.seed}", upstream=server.anthropic_base_url
        ) as rec:
            result = run_agent(rec, agent)
            steps = rec.stats["live"]
        yield Fixture(
            design=plan,
            tape=tape,
            run_id=rec.run_id,
            digest=rec.digest,
            steps=steps,
            result=result,
            failed=not oracle(result),
            upstream=server.anthropic_base_url,
            agent=agent,
            oracle=oracle,
            policy=policy,
        )
