"""Delegation: sub-agents that call themselves or an ancestor, or nest too deep."""

from __future__ import annotations

from collections.abc import Iterator

from .._config import Config
from .._findings import Finding
from .._registry import INT, STRINGS, Param, rule
from .._trace import Call, Trace
from ._common import (
    _delegates,
    _finding,
)


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
