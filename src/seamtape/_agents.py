"""Running an agent function inside a session: the library calls behind `seamtape record/replay`."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import dataclasses
import importlib
import inspect
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from seamtape._session import Session, record, replay

from ._errors import AgentError, AgentRaisedError

__all__ = [
    "AgentError",
    "AgentRaisedError",
    "RunReport",
    "load_agent",
    "record_agent",
    "replay_agent",
    "run_agent",
]

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

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``seamtape record/replay --json``)."""
        data = dataclasses.asdict(self)
        if self.recorded_digest is not None:
            data["bit_exact"] = self.bit_exact
        else:
            data.pop("recorded_digest")
        return data


def load_agent(spec: str, *, pythonpath: Sequence[str | os.PathLike[str]] = ()) -> Agent:
    """Import ``package.module:function`` from the project: ``pythonpath`` first, then the
    current directory and its ``src/`` (the two layouts a project has), as for pytest."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AgentError(f"agent {spec!r} must look like package.module:function")
    cwd = os.getcwd()
    folders = [os.path.abspath(p) for p in pythonpath] + [cwd, os.path.join(cwd, "src")]
    for folder in reversed(folders):
        if os.path.isdir(folder) and folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AgentError(f"cannot import agent module {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise AgentError(f"{module_name!r} has no callable {attr!r}")
    return fn


def run_agent(session: Session, agent: Agent) -> Any:
    """Call ``agent(session)`` (awaiting it if async) and set its result on the session.

    An exception the agent raises comes out as ``AgentRaisedError`` (the original is its
    ``__cause__``), so callers tell the agent's failure from seamtape's own errors.
    """
    try:
        result = agent(session)
        if inspect.isawaitable(result):
            # In the caller's context, as asyncio.run would: it names the session in force.
            result = _runner().run(_await(result), context=contextvars.copy_context())
    except Exception as exc:
        if isinstance(exc, AgentRaisedError):
            raise
        raise AgentRaisedError(f"the agent raised {_describe(exc)}") from exc
    session.result = result
    return result


def _describe(exc: BaseException) -> str:
    """``Type: message`` and where in the agent's own code it was raised."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    ours = os.path.dirname(os.path.abspath(__file__))
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "site-packages" not in f.filename and not f.filename.startswith(ours)
    ]
    if frames:
        text += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return text


async def _await(awaitable: Any) -> Any:
    return await awaitable


_loops = threading.local()


def _runner() -> Any:
    """One event loop per thread for every async agent run (forks, blame trials) in it.

    Frameworks cache async HTTP clients for the process (LangGraph's chat models keep one
    per base URL); their pooled connections belong to the loop that opened them, so a fresh
    loop per run (``asyncio.run``) would meet "Event loop is closed" on the second run.
    """
    # Lazy: only async agents need a loop; sync agents' runs never load asyncio otherwise.
    import asyncio  # noqa: PLC0415

    runner = getattr(_loops, "runner", None)
    if runner is None:
        runner = _loops.runner = asyncio.Runner()
        atexit.register(_close, runner)
    return runner


def _close(runner: Any) -> None:
    # At interpreter exit Python 3.12+ cannot start the thread that shuts the loop's default
    # executor down; the loop is left to the interpreter then, as asyncio.run's would be.
    with contextlib.suppress(RuntimeError):
        runner.close()


def record_agent(
    path: str | os.PathLike[str],
    agent: Agent,
    *,
    name: str | None = None,
    upstream: str | None = None,
    sim_policy: str | None = None,
    guards: Any = None,
) -> RunReport:
    """Record one run of ``agent`` into the tape at ``path``; it reads ``session.upstream``.

    ``guards`` stop the run with ``GuardTripped`` before a request that a rule forbids.
    Clients the agent (or its framework) builds itself go through the session too, as in a
    fork (``intercept=True``).
    """
    with record(
        path,
        name=name,
        upstream=upstream,
        sim_policy=sim_policy,
        guards=guards,
        intercept=True,
    ) as session:
        result = run_agent(session, agent)
        stats = session.stats
    return RunReport(session.run_id, session.digest, result, stats["served"], stats["live"])


def replay_agent(
    path: str | os.PathLike[str], agent: Agent, *, run: str | None = None, partial: bool = False
) -> RunReport:
    """Replay a recorded run of ``agent``; raises ``DivergenceError`` at the first difference."""
    with replay(path, run=run, partial=partial, intercept=True) as session:
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
