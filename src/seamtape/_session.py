"""The user's handle on a tape: ``record()`` and ``replay()`` blocks that hand out clients."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from seamtape._cursor import Cursor, Matching, Substitute
from seamtape._errors import (
    DivergenceError,
    GuardTripped,
    NotReplayableError,
    SeamtapeError,
    UpstreamError,
)
from seamtape._match import Redaction, canonical_url, explain
from seamtape._nondet import NondetSource
from seamtape.seams import LIBRARIES, BotocoreSeam, default_inner, intercepting, transport_class
from seamtape.tape import RunInfo, Tape, remove_tape

__all__ = ["Session", "extend", "record", "replay"]

_UNSET: Any = object()


class Session:
    """A record, replay or fork of one run.

    Use it as a context manager (sync or async). Inside the block, build clients with
    ``httpx2_client()`` and friends and read time, ids and randomness from ``nondet``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: str,
        *,
        run: str | None = None,
        name: str | None = None,
        intercept: bool = False,
        partial: bool = False,
        upstream: str | None = None,
        fork_step: int | None = None,
        mutation: Any = None,
        substitute: Substitute | None = None,
        extend: bool = False,
        sim_policy: str | None = None,
        matching: Matching | None = None,
        guards: Any = None,
        redact: bool | Redaction = True,
    ) -> None:
        if mode not in ("record", "replay", "fork"):
            raise ValueError(f"mode must be 'record', 'replay' or 'fork', not {mode!r}")
        if extend and mode != "fork":
            raise ValueError("extend=True is a kind of fork: use it with mode='fork'")
        if mode == "fork" and not extend and (fork_step is None or fork_step < 1):
            raise ValueError("a fork needs fork_step, the 1-based step to substitute")
        self.path = os.fspath(path)
        self.mode = mode
        self.name = name
        self._run_arg = run
        self._intercept = intercept
        self.partial = partial
        self._upstream = upstream
        self._live_upstream = upstream
        # The simulator policy behind ``upstream`` (a spec), stored on the run so that forks
        # and re-recordings restart the same simulator rather than reach a port long closed.
        self._sim_policy = sim_policy
        self._matching = matching
        self.fork_step = fork_step
        self._mutation = mutation
        self._substitute = substitute
        # Serve the whole parent while requests match; record live from the first that does not.
        self._extend = extend
        # Lint rules run live before each request leaves (a seamtape.Guards, a lint config).
        self._guards = guards
        # True: the default rules; a Redaction: the user's; False: bodies stored as sent.
        self._redaction = _redaction(redact)
        self._result: Any = _UNSET
        self.recorded: RunInfo | None = None
        self._tape: Tape | None = None
        self._cursor: Cursor | None = None
        self._stack = contextlib.ExitStack()
        self._digest: str | None = None
        self._final_stats: dict[str, int] | None = None
        self._created = False
        self.run_id = ""

    # -- the block -------------------------------------------------------------------------

    def __enter__(self) -> Session:
        self._created = self.mode == "record" and not os.path.exists(self.path)
        tape = Tape(self.path, create=self.mode == "record")
        try:
            self._open_extra_tapes()
            if self.mode == "record":
                upstream = None if self._upstream is None else canonical_url(self._upstream)
                self.run_id = tape.create_run(
                    self.name, upstream=upstream, sim_policy=self._sim_policy
                )
                self._cursor = Cursor(
                    tape,
                    self.run_id,
                    live=True,
                    matching=self._matching,
                    guard=self._guard_for(tape, self.run_id),
                    redaction=self._redaction,
                )
            else:
                self.recorded = parent = tape.run(self._run_arg)
                if parent.status == "ingested":
                    raise NotReplayableError(parent.id)
                self._upstream = parent.upstream
                if self.mode == "replay":
                    self.run_id = parent.id
                    self._cursor = Cursor(
                        tape,
                        self.run_id,
                        served=tape.exchanges(parent.id),
                        served_draws=tape.draws(parent.id),
                        live=False,
                        matching=self._matching,
                        redaction=self._redaction,
                    )
                else:
                    self._choose_live_upstream(parent)
                    self._cursor = self._fork_cursor(tape, parent)
        except BaseException:
            self._stack.close()
            tape.close()
            raise
        self._tape = tape
        if self._intercept:
            self._stack.enter_context(intercepting(self._wrap, LIBRARIES))
        return self

    def _open_extra_tapes(self) -> None:
        """Read-only tapes named in ``matching``: their default runs' exchanges, kept open
        for the block so their bodies can be served."""
        matching = self._matching
        if matching is None or not matching.extra_tapes:
            return
        extra = []
        for path in matching.extra_tapes:
            other = self._stack.enter_context(Tape(path))
            extra += other.exchanges(other.run().id)
        self._matching = dataclasses.replace(matching, extra=tuple(extra))

    def _choose_live_upstream(self, parent: RunInfo) -> None:
        """One rule for where a fork's live requests go: the upstream the caller names, else
        the parent's simulator restarted with its recorded policy, else the parent's URL."""
        if self._live_upstream is not None or parent.sim_policy is None:
            if self._live_upstream is None:
                self._live_upstream = parent.upstream
            return
        # Lazy: only forks of a simulated run need it; at the top it doubles this import.
        from seamtape import sim  # noqa: PLC0415

        policy = sim.policy_from_spec(parent.sim_policy)
        server = self._stack.enter_context(sim.serve(policy))
        self._live_upstream = server.base_url
        self._sim_policy = parent.sim_policy

    @property
    def live_upstream(self) -> str | None:
        """Where this session's live requests go (None for a replay, which makes none)."""
        return None if self.mode == "replay" else self._live_upstream

    @property
    def sim_policy(self) -> str | None:
        """The simulator policy answering the live requests, when the upstream is a simulator."""
        return None if self.mode == "replay" else self._sim_policy

    def describe_live(self) -> str:
        """Where live requests went, in words: ``the simulator (policy SPEC) at URL`` or a URL."""
        url = self.live_upstream or "the URLs the agent called"
        if self.sim_policy is not None:
            return f"the simulator (policy {self.sim_policy}) at {url}"
        return url

    def _fork_cursor(self, tape: Tape, parent: RunInfo) -> Cursor:
        exchanges = tape.exchanges(parent.id)
        step = len(exchanges) + 1 if self._extend else self.fork_step or 1
        if step > len(exchanges) + 1:
            raise SeamtapeError(
                f"run {parent.id} has {len(exchanges)} steps; cannot fork at step {step}"
            )
        self.run_id = tape.create_run(
            self.name or f"fork of {parent.id} at step {step}",
            parent=parent.id,
            fork_step=step,
            mutation=self._mutation,
            upstream=parent.upstream,
            sim_policy=self._sim_policy,
        )
        return Cursor(
            tape,
            self.run_id,
            served=[ex for ex in exchanges if ex.seq < step],
            served_draws=[d for d in tape.draws(parent.id) if d.step < step],
            live=True,
            copy_served=True,
            substitute=self._substitute,
            extend=self._extend,
            matching=self._matching,
            guard=self._guard_for(tape, self.run_id),
            redaction=self._redaction,
        )

    def _guard_for(self, tape: Tape, run_id: str) -> Any:
        if self._guards is None:
            return None
        # Lazy: only guarded sessions need lint; at the top it doubles this import.
        from seamtape.lenses.lint import guards_of  # noqa: PLC0415

        guards = guards_of(self._guards)
        return None if guards is None else guards.bind(tape, run_id)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()
        cursor, tape = self._cursor, self._tape
        if cursor is None or tape is None:
            return
        try:
            cursor.close()
            self._digest = cursor.digest
            if self.mode != "replay":
                tripped = cursor.tripped
                self._finish_record(tape, failed=exc_type is not None or tripped is not None)
                unreachable = self._unreachable(tape) if exc_type is not None else None
                if unreachable is not None:
                    tape.drop_run(self.run_id)
                    empty = self._created and not tape.runs()
                    tape.close()
                    if empty:  # the tape this recording created holds nothing
                        remove_tape(self.path)
                    raise unreachable from exc
                if tripped is not None and not isinstance(exc, GuardTripped):
                    # An agent may have swallowed the trip; the run was stopped all the same.
                    raise tripped from exc
                return
            problem = cursor.divergence
            if problem is None and exc_type is None:
                problem = self._replay_problem(cursor)
        finally:
            tape.close()
            self._final_stats = self.stats
            self._cursor = None
        if problem is not None and not isinstance(exc, DivergenceError):
            # An agent or SDK may have swallowed the divergence; it is the run's verdict.
            raise problem from exc

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _finish_record(self, tape: Tape, *, failed: bool) -> None:
        has_result = self._result is not _UNSET
        tape.finish_run(
            self.run_id,
            status="failed" if failed else "complete",
            digest=self._digest,
            result=self._result if has_result else None,
            has_result=has_result,
        )
        if self._extend and self._cursor is not None:
            # The run left its parent at the first step that was not served from it.
            self.fork_step = self._cursor.served_exchanges + 1
            tape.set_fork_step(self.run_id, self.fork_step)

    def _unreachable(self, tape: Tape) -> UpstreamError | None:
        """An error naming the upstream when every live request of a failed run failed to
        connect: such a run recorded nothing but the outage, and is not kept."""
        first_live = 1
        if self.mode == "fork":
            substituted = not self._extend and (self._mutation or {}).get("kind") != "resample"
            first_live = (self.fork_step or 1) + (1 if substituted else 0)
        live = [ex for ex in tape.exchanges(self.run_id) if ex.seq >= first_live]
        if not live or any(ex.status != 0 for ex in live):
            return None
        if not all((ex.error or {}).get("type") in _CONNECT_ERRORS for ex in live):
            return None
        url = self.live_upstream or _origin(live[0].url)
        return UpstreamError(unreachable_message(url, live[0].error or {}), url=url)

    def _replay_problem(self, cursor: Cursor) -> DivergenceError | None:
        if not self.partial:
            leftover = cursor.leftovers()
            if leftover is not None:
                return leftover
        recorded = self.recorded
        if recorded is not None and recorded.has_result and self._result is not _UNSET:
            old = json.dumps(recorded.result, sort_keys=True).encode()
            new = json.dumps(self._result, sort_keys=True).encode()
            if old != new:
                path, was, now = explain(old, new)
                return DivergenceError(
                    "the agent returned a different result",
                    run=self.run_id,
                    path=path.replace("$", "$result", 1),
                    recorded=was,
                    new=now,
                )
        return None

    # -- what the agent uses ---------------------------------------------------------------

    @property
    def nondet(self) -> NondetSource:
        return self._live_cursor().nondet

    @property
    def digest(self) -> str:
        """The run's digest: final once the block has exited, so far while it runs."""
        if self._digest is not None:
            return self._digest
        return self._live_cursor().digest

    @property
    def result(self) -> Any:
        return None if self._result is _UNSET else self._result

    @result.setter
    def result(self, value: Any) -> None:
        """The agent's result: stored on the run when recording, compared when replaying."""
        try:
            json.dumps(value, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise SeamtapeError(f"the agent's result is not JSON-serializable: {exc}") from None
        self._result = value

    @property
    def stats(self) -> dict[str, int]:
        """How many exchanges were served from the tape and how many went live."""
        if self._cursor is None and self._final_stats is not None:
            return dict(self._final_stats)
        cursor = self._live_cursor()
        return {"served": cursor.served_exchanges, "live": cursor.live_exchanges}

    def _live_cursor(self) -> Cursor:
        if self._cursor is None:
            raise SeamtapeError("the session is not open: use it inside its `with` block")
        return self._cursor

    @property
    def upstream(self) -> str | None:
        """The base URL the agent should call: the one its run was recorded against.

        Agents that build their clients from ``session.upstream`` replay and fork unchanged;
        a fork sends its live requests to the fork's own upstream instead.
        """
        return self._upstream

    def _wrap(self, library: str, is_async: bool, inner: Any) -> Any:
        cursor = self._live_cursor()
        if not cursor.live:
            return transport_class(library, is_async=is_async)(cursor, None)
        if inner is None:
            inner = default_inner(library, is_async=is_async)
        redirect = None
        if self.mode == "fork" and self._upstream and self._live_upstream:
            redirect = (self._upstream, self._live_upstream)
        return transport_class(library, is_async=is_async)(cursor, inner, redirect)

    def httpx_transport(self, inner: Any = None) -> Any:
        """An ``httpx`` transport through this session; ``inner`` carries live requests."""
        return self._wrap("httpx", False, inner)

    def async_httpx_transport(self, inner: Any = None) -> Any:
        return self._wrap("httpx", True, inner)

    def httpx2_transport(self, inner: Any = None) -> Any:
        return self._wrap("httpx2", False, inner)

    def async_httpx2_transport(self, inner: Any = None) -> Any:
        return self._wrap("httpx2", True, inner)

    def httpx_client(self, **kwargs: Any) -> Any:
        """An ``httpx.Client`` through this session; keyword arguments go to the client."""
        import httpx  # noqa: PLC0415  (optional extra; a session loads only the stack it uses)

        return httpx.Client(transport=self.httpx_transport(kwargs.pop("transport", None)), **kwargs)

    def async_httpx_client(self, **kwargs: Any) -> Any:
        import httpx  # noqa: PLC0415  (optional extra; a session loads only the stack it uses)

        transport = self.async_httpx_transport(kwargs.pop("transport", None))
        return httpx.AsyncClient(transport=transport, **kwargs)

    def httpx2_client(self, **kwargs: Any) -> Any:
        import httpx2  # noqa: PLC0415  (optional extra; a session loads only the stack it uses)

        transport = self.httpx2_transport(kwargs.pop("transport", None))
        return httpx2.Client(transport=transport, **kwargs)

    def async_httpx2_client(self, **kwargs: Any) -> Any:
        import httpx2  # noqa: PLC0415  (optional extra; a session loads only the stack it uses)

        transport = self.async_httpx2_transport(kwargs.pop("transport", None))
        return httpx2.AsyncClient(transport=transport, **kwargs)

    def attach_botocore(self, client: Any) -> Any:
        """Tee every operation of a boto3/botocore ``client`` through this session; returns it.

        Recording, each request goes out through the client's own HTTP session, with its retry
        handler in charge, so each attempt is its own exchange. Replaying, botocore parses
        responses served from the tape (streams included) and nothing reaches the network;
        dummy credentials are enough. The client is detached when the block exits.
        """
        cursor = self._live_cursor()
        send = client._endpoint.http_session.send if cursor.live else None
        redirect = None
        if self.mode == "fork" and self._upstream and self._live_upstream:
            redirect = (self._upstream, self._live_upstream)
        seam = BotocoreSeam(cursor, send, redirect)
        if seam.attach(client):  # attaching twice to one session is a no-op
            self._stack.callback(seam.detach)
        return client


# Transport errors that mean nothing answered at all (httpx, httpx2, botocore, the socket).
_CONNECT_ERRORS = frozenset(
    {"ConnectError", "ConnectTimeout", "EndpointConnectionError", "ConnectionRefusedError"}
)


def unreachable_message(url: str, error: dict[str, str], *, flag: str = "--upstream") -> str:
    """One line: which upstream did not answer, and what to do next."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    start = f"start `seamtape sim --port {port}` or " if local else ""
    why = error.get("type", "connection failed")
    return f"cannot reach the upstream {url} ({why}): {start}pass {flag} URL"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def record(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    intercept: bool = False,
    upstream: str | None = None,
    sim_policy: str | None = None,
    matching: Matching | None = None,
    guards: Any = None,
    redact: bool | Redaction = True,
) -> Session:
    """Record a new run into the tape at ``path`` (created if missing).

    ``upstream`` is the base URL the agent talks to; agents read it back as
    ``session.upstream`` so that replays and forks build the same requests. When it is a
    seamtape simulator, ``sim_policy`` (its policy spec) is stored with the run, so a fork
    or a re-recording restarts the same simulator. ``guards`` (a ``seamtape.Guards``, or a
    lint configuration as a mapping or a file) runs the lint rules before each request
    leaves and stops the run with ``seamtape.GuardTripped``. ``redact`` masks
    secrets in bodies before they are stored (``Redaction`` adds rules, False turns it off);
    replay with the same rules.
    """
    return Session(
        path,
        "record",
        name=name,
        intercept=intercept,
        upstream=upstream,
        sim_policy=sim_policy,
        matching=matching,
        guards=guards,
        redact=redact,
    )


def replay(
    path: str | os.PathLike[str],
    *,
    run: str | None = None,
    intercept: bool = False,
    partial: bool = False,
    matching: Matching | None = None,
    redact: bool | Redaction = True,
) -> Session:
    """Replay a run bit-exact, with no network: by default the tape's latest recorded run
    (never a fork or a blame trial). ``redact`` applies the recording's redaction to each
    request before it is compared."""
    return Session(
        path,
        "replay",
        run=run,
        intercept=intercept,
        partial=partial,
        matching=matching,
        redact=redact,
    )


def extend(
    path: str | os.PathLike[str],
    *,
    run: str | None = None,
    name: str | None = None,
    intercept: bool = False,
    upstream: str | None = None,
    sim_policy: str | None = None,
    matching: Matching | None = None,
    redact: bool | Redaction = True,
) -> Session:
    """Serve a recorded run while the agent's requests match it, and record live from the
    first that does not: a new run in the same tape that shares the matching prefix."""
    return Session(
        path,
        "fork",
        run=run,
        name=name,
        intercept=intercept,
        upstream=upstream,
        mutation={"kind": "new"},
        extend=True,
        sim_policy=sim_policy,
        matching=matching,
        redact=redact,
    )


def _redaction(redact: bool | Redaction) -> Redaction | None:
    if isinstance(redact, Redaction):
        return redact
    return Redaction() if redact else None
