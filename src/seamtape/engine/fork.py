"""Fork a run at a step: the prefix is served from the tape for $0, the step is substituted,
and the rest is recorded live against an upstream."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seamtape import wire
from seamtape._agents import Agent, run_agent
from seamtape._errors import SeamtapeError
from seamtape._session import Session
from seamtape._steps import decode_exchange, steps_of
from seamtape.tape import Exchange, Tape

if TYPE_CHECKING:
    from seamtape.lenses.lint import Guards

__all__ = ["ForkResult", "fork"]


@dataclass
class ForkResult:
    run_id: str
    parent: str
    step: int
    mutation: dict[str, Any]
    result: Any
    served: int  # prefix exchanges served from the tape, free
    live: (
        int  # exchanges that went to the upstream (a resampled step counts, a substituted one not)
    )
    cost_usd: float  # priced from the usage in the live responses
    digest: str
    live_to: str = ""  # where the live requests went, in words
    upstream: str | None = None  # the URL they went to
    sim_policy: str | None = None  # the simulator's policy, when that was a simulator

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fork(
    tape: str | os.PathLike[str],
    run: str | None = None,
    *,
    step: int,
    agent: Agent,
    response: bytes | None = None,
    edit: dict[str, Any] | None = None,
    resample: bool = False,
    upstream: str | None = None,
    name: str | None = None,
    sim_policy: str | None = None,
    guards: Guards | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> ForkResult:
    """Re-run ``agent`` with step ``step`` of ``run`` answered differently.

    Exactly one of: ``response`` (a raw response body), ``edit`` (fields of the step's
    normalized ``Step`` to change, e.g. ``{"text": "..."}``, re-encoded by its wire codec),
    or ``resample=True`` (ask the upstream again). Live requests go to ``upstream`` when
    given (``sim_policy``: the policy of the simulator behind it, stored on the fork);
    otherwise to the run's own upstream: when that was a seamtape simulator, one is started
    with the policy the run recorded, since the recorded port is long closed. ``guards``
    check the fork's live requests as ``record(guards=...)`` does, over the whole fork (its
    served prefix included), and stop it with ``GuardTripped``.
    """
    chosen = [response is not None, edit is not None, resample]
    if sum(chosen) != 1:
        raise SeamtapeError("fork needs exactly one of response=, edit= or resample=True")
    with Tape(tape) as t:
        parent = t.run(run) if run else _latest_root(t)
        exchanges = t.exchanges(parent.id)
        if not 1 <= step <= len(exchanges):
            raise SeamtapeError(f"run {parent.id} has steps 1 to {len(exchanges)}; no step {step}")
        original = exchanges[step - 1]
        bodies = (original.request_bytes(), original.response_bytes())
    if response is not None:
        mutation: dict[str, Any] = {"kind": "response", "bytes": len(response)}
        answer: tuple[int, list[tuple[str, str]], list[bytes]] | None = _raw_answer(
            original, response
        )
    elif edit is not None:
        mutation = {"kind": "edit", "fields": edit}
        answer = edited_answer(original, bodies, edit)
    else:
        mutation = {"kind": "resample"}
        answer = None

    session = Session(
        tape,
        "fork",
        run=parent.id,
        name=name,
        upstream=upstream,
        fork_step=step,
        mutation=mutation,
        substitute=lambda method, url, body: answer,
        sim_policy=sim_policy,
        guards=guards,
        # An agent on a framework builds (or reuses) its own clients: they follow the fork.
        intercept=True,
    )
    with session:
        live_to = session.describe_live()
        live_url, live_policy = session.live_upstream, session.sim_policy
        result = run_agent(session, agent)
        stats = session.stats
    return ForkResult(
        run_id=session.run_id,
        parent=parent.id,
        step=step,
        mutation=mutation,
        result=result,
        served=stats["served"],
        live=stats["live"],
        cost_usd=live_cost(tape, session.run_id, after=step - (1 if resample else 0)),
        digest=session.digest,
        live_to=live_to,
        upstream=live_url,
        sim_policy=live_policy,
    )


def _latest_root(tape: Tape) -> Any:
    """The latest run that is not itself a fork: what "the run" means to a user."""
    roots = [r for r in tape.runs() if r.parent is None]
    return roots[-1] if roots else tape.run()


def _raw_answer(original: Exchange, body: bytes) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    """The recorded status and headers around a new body (its length set, no encoding)."""
    headers = [
        (k, v)
        for k, v in original.response_headers
        if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
    ]
    headers.append(("content-length", str(len(body))))
    return original.status or 200, headers, [body]


def edited_answer(
    original: Exchange, bodies: tuple[bytes, bytes], edit: dict[str, Any]
) -> tuple[int, list[tuple[str, str]], list[bytes]]:
    """The step's response re-built by its codec with ``edit`` applied to the decoded Step."""
    step = decode_exchange(original, bodies[0], bodies[1])
    changed = apply_edit(step, edit)
    encoded = wire.encode_response(changed, stream=step.stream)
    return encoded.status, list(encoded.headers), list(encoded.chunks)


def apply_edit(step: Any, edit: dict[str, Any]) -> Any:
    """A copy of ``step`` with the edited fields; tool calls may be given as plain dicts."""
    fields = {f.name for f in dataclasses.fields(step)}
    unknown = sorted(set(edit) - fields)
    if unknown:
        raise SeamtapeError(
            f"cannot edit {', '.join(unknown)}: a Step has {', '.join(sorted(fields))}"
        )
    values = dict(edit)
    if "tool_calls" in values:
        values["tool_calls"] = [
            c if isinstance(c, wire.ToolCall) else wire.ToolCall(**c) for c in values["tool_calls"]
        ]
        values.setdefault("stop_reason", "tool_use" if values["tool_calls"] else "end_turn")
    if "usage" in values and isinstance(values["usage"], dict):
        values["usage"] = wire.Usage(**values["usage"])
    return dataclasses.replace(step, **values)


def live_cost(tape: str | os.PathLike[str], run_id: str, *, after: int) -> float:
    """Cost of a run's steps past ``after``, priced from their recorded usage."""
    with Tape(tape) as t:
        steps = steps_of(t, run_id)
    total = 0.0
    for seq, step in enumerate(steps, start=1):
        if seq > after and step is not None:
            total += wire.cost(step) or 0.0
    return total
