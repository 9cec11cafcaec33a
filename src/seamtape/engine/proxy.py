"""A base-URL proxy over a session: record, replay or fork a run for a client in any language.

The proxy seam (``seams._proxy``) moves bytes; this module opens the session it moves them
through, builds one transport per upstream, and says which environment variables point each
SDK and CLI at it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from seamtape._errors import DivergenceError, NotReplayableError, SeamtapeError
from seamtape._match import canonical_url
from seamtape._session import Session
from seamtape.seams import default_inner
from seamtape.seams._ignore import IgnoringPaths
from seamtape.tape import Tape

from .fork import _latest_root, _raw_answer, edited_answer

__all__ = ["ProxyReport", "RunningProxy", "base_url_variables", "serve_proxy"]

MODES = ("record", "replay", "fork")

# What each SDK and common CLI reads for its base URL, by the upstream's kind.
# (variable, path the SDK expects below the host: OpenAI's clients want the /v1 in the URL)
_VARIABLES: dict[str, list[tuple[str, str]]] = {
    "anthropic": [("ANTHROPIC_BASE_URL", "")],  # the SDKs, Claude Code
    "openai": [("OPENAI_BASE_URL", "/v1")],  # the SDKs, Codex CLI
    "gemini": [("GOOGLE_GEMINI_BASE_URL", "")],  # google-genai
    "bedrock": [("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "")],  # boto3 and the AWS SDKs
}
_KINDS = {"anthropic": "anthropic", "claude": "anthropic", "openai": "openai", "gpt": "openai"}
_KINDS.update({"gemini": "gemini", "google": "gemini", "bedrock": "bedrock", "aws": "bedrock"})


def base_url_variables(route_name: str, upstream: str, url: str) -> list[tuple[str, str]]:
    """The environment variables that send an SDK for this route's provider to ``url``.

    The default route (no name) fronts whatever it fronts, so it gets every provider's.
    """
    kind = _KINDS.get(route_name.lower().split("-")[0].split("_")[0]) if route_name else None
    kinds = [kind] if kind else (list(_VARIABLES) if not route_name else [])
    out = []
    for k in kinds:
        for variable, suffix in _VARIABLES[k]:
            # An upstream given with its /v1 already forwards it; otherwise the client adds it.
            has = suffix and upstream.rstrip("/").endswith(suffix)
            out.append((variable, url + ("" if has else suffix)))
    return out


@dataclass
class ProxyReport:
    """What a proxy session did, once it has stopped."""

    mode: str
    run_id: str
    served: int = 0  # exchanges answered from the tape
    live: int = 0  # exchanges that went to an upstream
    digest: str = ""
    divergence: str | None = None  # the run's verdict when a replay diverged
    ignored: int = 0  # served although they differed from the recording at an ignored path


@dataclass
class RunningProxy:
    """A proxy serving on 127.0.0.1; ``report`` is filled in when it stops."""

    mode: str
    run_id: str
    base_url: str
    routes: list[tuple[str, str, str]]  # (route name, upstream, the client's base URL)
    report: ProxyReport | None = None
    _stop: Callable[[BaseException | None], ProxyReport] | None = field(default=None, repr=False)

    @property
    def variables(self) -> list[tuple[str, str]]:
        """Each SDK's and CLI's base-URL environment variable, set to this proxy."""
        seen: dict[str, str] = {}
        for name, upstream, url in self.routes:
            for variable, value in base_url_variables(name, upstream, url):
                seen.setdefault(variable, value)
        return list(seen.items())

    def banner(self) -> list[str]:
        """What the command line prints: where to point clients, and how."""
        lines = [f"seamtape proxy ({self.mode}, run {self.run_id}) on {self.base_url}"]
        for name, upstream, url in self.routes:
            label = f"/{name}/" if name else "/"
            target = upstream if self.mode != "replay" else f"{upstream} (from the tape)"
            lines.append(f"  {url}  →  {target}" if name else f"  {label}  →  {target}")
        lines += [f"  export {variable}={value}" for variable, value in self.variables]
        return lines

    def stop(self, error: BaseException | None = None) -> ProxyReport:
        if self.report is None and self._stop is not None:
            self.report = self._stop(error)
        assert self.report is not None
        return self.report

    def __enter__(self) -> RunningProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(exc)


def serve_proxy(
    tape: str | os.PathLike[str],
    mode: str,
    *,
    upstreams: Sequence[str] = (),
    run: str | None = None,
    port: int = 0,
    name: str | None = None,
    partial: bool = False,
    step: int | None = None,
    edit: dict[str, Any] | None = None,
    response: bytes | None = None,
    resample: bool = False,
    ignore: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> RunningProxy:
    """Start a proxy on 127.0.0.1 that records, replays or forks a run of ``tape``.

    ``upstreams`` are ``URL`` or ``name=URL`` specs: required to record; for a fork they
    override where live requests go, per route; a replay has none (nothing goes live). A fork
    substitutes ``step`` with exactly one of ``edit``, ``response`` or ``resample``.
    ``ignore`` lists JSON paths (``$.metadata.request_time``) at which a request body may
    differ from the recorded one and still be served from the tape. Stop it with ``stop()``
    or a ``with`` block; a replay's divergence is in the report, not raised.
    """
    # Lazy: the proxy seam loads http.server, which importing this module must not.
    from seamtape.seams._proxy import (  # noqa: PLC0415
        ProxyServer,
        parse_routes,
        rewriting_transport,
        routes_from_text,
        routes_text,
    )

    if mode not in MODES:
        raise SeamtapeError(f"proxy mode must be one of {', '.join(MODES)}, not {mode!r}")
    if ignore and mode == "record":
        raise SeamtapeError("--ignore-path applies to what is served from a tape: replay or fork")
    _require_httpx2()
    _check_port(port)  # before the session opens: a busy port leaves no empty run behind
    live_routes: dict[str, str] = {}
    if mode == "record":
        routes = parse_routes(upstreams)
        session = Session(tape, "record", name=name, upstream=routes_text(routes))
    elif mode == "replay":
        if upstreams:
            raise SeamtapeError("a replay sends nothing upstream: drop --upstream")
        session = Session(tape, "replay", run=run, partial=partial)
    else:
        session = _fork_session(tape, run, name, step, edit, response, resample)
        live_routes = {r.name: r.upstream for r in parse_routes(upstreams)} if upstreams else {}
    session.__enter__()
    try:
        routes = routes_from_text(session.upstream) if mode != "record" else routes
        unknown = sorted(set(live_routes) - {r.name for r in routes})
        if unknown:
            raise SeamtapeError(
                f"the run has no upstream named {', '.join(map(repr, unknown))}; it has "
                + ", ".join(repr(r.name or "(default)") for r in routes)
            )
        transports = {}
        for route in routes:
            inner = default_inner("httpx2", is_async=False)
            live = live_routes.get(route.name)
            if live is not None and live.rstrip("/") != route.upstream:
                inner = rewriting_transport(inner, route.upstream, live.rstrip("/"))
            transports[route.name] = session.httpx2_transport(inner)
        ignoring = _ignoring(session, ignore, step if mode == "fork" else None)
        server = ProxyServer(routes, transports, port=port, log=log, prepare=ignoring).start()
    except BaseException as exc:
        session.__exit__(type(exc), exc, exc.__traceback__)
        raise

    def stop(error: BaseException | None) -> ProxyReport:
        server.stop()
        report = ProxyReport(mode=mode, run_id=session.run_id)
        try:
            session.__exit__(
                None if error is None else type(error),
                error,
                None if error is None else error.__traceback__,
            )
        except DivergenceError as exc:
            report.divergence = exc.message()
        finally:
            for transport in transports.values():
                transport.close()
        stats = session.stats
        report.served, report.live, report.digest = stats["served"], stats["live"], session.digest
        report.ignored = ignoring.ignored if ignoring is not None else 0
        return report

    return RunningProxy(
        mode=mode,
        run_id=session.run_id,
        base_url=server.base_url,
        routes=[(r.name, r.upstream, server.route_url(r)) for r in routes],
        _stop=stop,
    )


def _ignoring(session: Any, paths: Sequence[str], step: int | None) -> IgnoringPaths | None:
    """The body hook for ignorable paths over the requests this session will serve."""
    if not paths:
        return None
    parent = session.recorded
    with Tape(session.path) as tape:
        exchanges = [ex for ex in tape.exchanges(parent.id) if step is None or ex.seq < step]
        bodies = tape.blobs(ex.request_body for ex in exchanges)
    recorded = [
        (ex.method, ex.url, (lambda data=bodies[ex.request_body]: data)) for ex in exchanges
    ]
    return IgnoringPaths(recorded, paths, canonical_url)


def _fork_session(
    tape: str | os.PathLike[str],
    run: str | None,
    name: str | None,
    step: int | None,
    edit: dict[str, Any] | None,
    response: bytes | None,
    resample: bool,
) -> Any:
    if step is None or step < 1:
        raise SeamtapeError("a fork needs --step, the 1-based step to substitute")
    if sum([edit is not None, response is not None, resample]) != 1:
        raise SeamtapeError("a fork needs exactly one of --edit, --response or --resample")
    with Tape(tape) as t:
        parent = t.run(run) if run else _latest_root(t)
        if parent.status == "ingested":  # its steps hold no bytes to serve or to edit
            raise NotReplayableError(parent.id)
        exchanges = t.exchanges(parent.id)
        if not 1 <= step <= len(exchanges):
            raise SeamtapeError(f"run {parent.id} has steps 1 to {len(exchanges)}; no step {step}")
        original = exchanges[step - 1]
        bodies = (original.request_bytes(), original.response_bytes())
    answer = None
    if response is not None:
        mutation: dict[str, Any] = {"kind": "response", "bytes": len(response)}
        answer = _raw_answer(original, response)
    elif edit is not None:
        mutation = {"kind": "edit", "fields": edit}
        answer = edited_answer(original, bodies, edit)
    else:
        mutation = {"kind": "resample"}
    return Session(
        tape,
        "fork",
        run=parent.id,
        name=name,
        fork_step=step,
        mutation=mutation,
        substitute=lambda method, url, body: answer,
    )


def _check_port(port: int) -> None:
    from seamtape.seams._proxy import HOST  # noqa: PLC0415  (http.server: as above)

    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise SeamtapeError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None


def _require_httpx2() -> None:
    try:
        import httpx2  # noqa: F401, PLC0415  (an optional extra: checked, not required)
    except ImportError:
        raise SeamtapeError(
            "the proxy sends requests upstream with httpx2: pip install 'seamtape[httpx2]'"
        ) from None
