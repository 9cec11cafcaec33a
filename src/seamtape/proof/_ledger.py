"""The ledger world: accounts, the agent's tools, the auditing agent and its oracle
(docs/blame.md, "The injected-fault worlds")."""

from __future__ import annotations

import functools
import hashlib
import re
import ssl
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SYSTEM",
    "TOOLS",
    "Account",
    "LedgerAgent",
    "TotalOracle",
    "World",
    "run_tool",
    "task_text",
]


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
        # Lazy: the sdks and httpx2 extras; only a fixture's run needs them.
        import anthropic  # noqa: PLC0415
        import httpx2  # noqa: PLC0415

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
                tools=TOOLS,  # type: ignore[arg-type]  # plain dicts, as the SDK's docs write them
                messages=messages,  # type: ignore[arg-type]
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
                block: dict[str, Any] = {
                    "type": "tool_result",
                    "tool_use_id": use.id,
                    "content": content,
                }
                if is_error:
                    block["is_error"] = True
                results.append(block)
            messages.append({"role": "user", "content": results})
        return {"answer": None, "total": None, "turns": limit}


@functools.cache
def _tls_context() -> Any:
    return ssl.create_default_context()


@dataclass(frozen=True)
class TotalOracle:
    """Success when the reported total is within ``tolerance`` EUR of the truth."""

    truth: int
    tolerance: int = 0

    def __call__(self, result: Any) -> bool:
        total = result.get("total") if isinstance(result, dict) else None
        return isinstance(total, int) and abs(total - self.truth) <= self.tolerance
