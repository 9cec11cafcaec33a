"""Running an agent function inside a session: the library calls behind `seamtape record/replay`."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seamtape._session import Session, record, replay

from ._errors import AgentError

__all__ = ["AgentError", "RunReport", "load_agent", "record_agent", "replay_agent", "run_agent"]

Agent = Callable[[Session], Any]


@dataclass
class RunReport:
    run_id: str
    digest: str
    result: Any
    served: int
    live: int
    recorded_digest: str | None = None

    @property
    def bit_exact(self) -> bool:
        return self.recorded_digest is not None and self.recorded_digest == self.digest


def load_agent(spec: str) -> Agent:
    """Import ``package.module:function``; the current directory is on the path, as for pytest."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AgentError(f"agent {spec!r} must look like package.module:function")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AgentError(f"cannot import agent module {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise AgentError(f"{module_name!r} has no callable {attr!r}")
    return fn


def run_agent(session: Session, agent: Agent) -> Any:
    """Call ``agent(session)`` (awaiting it if async) and set its result on the session."""
    result = agent(session)
    if inspect.isawaitable(result):
        import asyncio

        result = asyncio.run(_await(result))
    session.result = result
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def record_agent(
    path: str | os.PathLike[str],
    agent: Agent,
    *,
    name: str | None = None,
    upstream: str | None = None,
    guards: Any = None,
) -> RunReport:
    """Record one run of ``agent`` into the tape at ``path``; it reads ``session.upstream``.

    ``guards`` stop the run with ``GuardTripped`` before a request that a rule forbids."""
    with record(path, name=name, upstream=upstream, guards=guards) as session:
        result = run_agent(session, agent)
        stats = session.stats
    return RunReport(session.run_id, session.digest, result, stats["served"], stats["live"])


def replay_agent(
    path: str | os.PathLike[str], agent: Agent, *, run: str | None = None, partial: bool = False
) -> RunReport:
    """Replay a recorded run of ``agent``; raises ``DivergenceError`` at the first difference."""
    with replay(path, run=run, partial=partial) as session:
        result = run_agent(session, agent)
        stats = session.stats
    recorded = session.recorded
    return RunReport(
        session.run_id,
        session.digest,
        result,
        stats["served"],
        stats["live"],
        recorded_digest=recorded.digest if recorded else None,
    )
