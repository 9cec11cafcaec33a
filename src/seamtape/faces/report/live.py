"""The live UI: the report's page served on 127.0.0.1, updated while runs are recorded.

A watcher notices a tape's files change (a recording commits each exchange to the WAL),
rebuilds the page's document, and tells every open page through server-sent events; the
page then fetches the new document. With an agent, ``POST /api/fork`` forks a run at a step
with an edited answer through ``seamtape.fork``.

A fork runs code, so every request is checked: the Host header must name this server
(a DNS-rebinding page cannot reach it), a per-launch token must come with it (in the URL
the server prints, then in a header), and a request from another origin is refused.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from seamtape._errors import SeamtapeError, TapeError

from ._data import StepCache, report_data
from ._html import render_page

__all__ = ["TOKEN_HEADER", "LiveServer", "UpstreamFor"]

TOKEN_HEADER = "X-Seamtape-Token"
_WATCH_EVERY = 0.1  # seconds between looks at the tapes' files
_KEEPALIVE = 15.0  # seconds between comments on an idle event stream
_MAX_BODY = 1 << 20  # a fork request is a small JSON document

# (tape path, run id) -> the base URL a fork's live tail goes to (None: the recorded one)
UpstreamFor = Callable[[str, str], str | None]


class LiveServer:
    """``seamtape serve``: the page and its API on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        tapes: Sequence[str | os.PathLike[str]],
        *,
        port: int = 7777,
        agent: Any = None,
        upstream: str | UpstreamFor | None = None,
        blame: dict[str, Any] | None = None,
        lint: list[dict[str, Any]] | None = None,
        token: str | None = None,
    ) -> None:
        if not tapes:
            raise SeamtapeError("serve needs at least one tape")
        self.tapes = [os.fspath(t) for t in tapes]
        self.agent = agent
        self._upstream = upstream
        self._blame = blame
        self._lint = lint
        self.token = token or secrets.token_urlsafe(24)
        self._changed = threading.Condition()
        self._version = 0
        self._doc = b"{}"
        self._signature: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._fork_lock = threading.Lock()
        self._rebuild_lock = threading.Lock()  # the watcher and a fork both rebuild
        self._cache = StepCache()
        self.problem = ""  # why the last rebuild failed, shown on the console
        try:
            self._http = _Server(("127.0.0.1", port), _Handler)
        except OSError as exc:
            raise SeamtapeError(
                f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}"
            ) from None
        self._http.live = self
        self.port = self._http.server_address[1]
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The page's address, with the token: the one a person opens."""
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    @property
    def origins(self) -> tuple[str, ...]:
        return (f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}")

    @property
    def hosts(self) -> tuple[str, ...]:
        return (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    # -- running ---------------------------------------------------------------------------

    def start(self) -> LiveServer:
        self._rebuild()
        for target in (self._http.serve_forever, self._watch):
            thread = threading.Thread(target=target, daemon=True, name="seamtape-serve")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until stopped (Ctrl-C in the command)."""
        self._stop.wait()

    # -- the document ----------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def version(self) -> int:
        return self._version

    def document(self) -> bytes:
        return self._doc

    def _files(self) -> tuple[Any, ...]:
        sig: list[tuple[int, int] | None] = []
        for path in self.tapes:
            for name in (path, path + "-wal"):
                try:
                    st = os.stat(name)
                    sig.append((st.st_mtime_ns, st.st_size))
                except OSError:
                    sig.append(None)
        return tuple(sig)

    def _rebuild(self) -> None:
        with self._rebuild_lock:
            self._rebuild_now()

    def _rebuild_now(self) -> None:
        signature = self._files()
        try:
            data = report_data(
                self.tapes,
                blame=self._blame,
                lint=self._lint,
                missing_ok=True,
                cache=self._cache,
            )
        except TapeError as exc:  # a tape being created this instant: look again next time
            self.problem = str(exc)
            return
        self.problem = ""
        self._signature = signature
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if encoded != self._doc:
            with self._changed:
                self._doc = encoded
                self._version += 1
                self._changed.notify_all()

    def _watch(self) -> None:
        while not self._stop.wait(_WATCH_EVERY):
            if self._files() != self._signature:
                self._rebuild()

    def wait_for_change(self, version: int, timeout: float) -> int:
        """The document's version once it is past ``version`` (or when ``timeout`` passes)."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._version > version or self._stop.is_set(), timeout=timeout
            )
            return self._version

    # -- forking ---------------------------------------------------------------------------

    def fork(self, request: dict[str, Any]) -> dict[str, Any]:
        """Fork a run at a step with an edited answer; what the page shows of the new run."""
        from seamtape.engine.fork import fork

        if self.agent is None:
            raise SeamtapeError("this server has no agent: start it with --agent pkg.mod:fn")
        try:
            tape = self.tapes[int(request["tape"])]
            run, step, edit = str(request["run"]), int(request["step"]), request["edit"]
        except (KeyError, IndexError, TypeError, ValueError):
            raise SeamtapeError("a fork needs tape, run, step and edit") from None
        if not isinstance(edit, dict):
            raise SeamtapeError("edit must be an object of Step fields")
        upstream = self._upstream(tape, run) if callable(self._upstream) else self._upstream
        with self._fork_lock:
            result = fork(tape, run, step=step, agent=self.agent, edit=edit, upstream=upstream)
        self._rebuild()
        return {
            "run_id": result.run_id,
            "served": result.served,
            "live": result.live,
            "cost_usd": result.cost_usd,
            "result": result.result,
        }

    def page(self) -> str:
        config = {
            "mode": "live",
            "token": self.token,
            "agent": self.agent is not None,
            "fork_upstream": self._upstream if isinstance(self._upstream, str) else None,
        }
        return render_page(None, config=config, title="seamtape · live")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    live: LiveServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- the checks ------------------------------------------------------------------------

    def _refused(self, *, post: bool) -> str:
        """Why this request is refused, or "" when it may go on."""
        live = self.server.live
        if self.headers.get("Host", "") not in live.hosts:
            return "this server answers only to 127.0.0.1 and localhost (Host header refused)"
        origin = self.headers.get("Origin")
        if origin is not None and origin not in live.origins:
            return "cross-origin request refused"
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return "cross-site request refused"
        if post and origin is None:
            return "a POST must come from the page (no Origin header)"
        return ""

    def _token_ok(self, query: dict[str, list[str]], *, header_only: bool) -> bool:
        given = self.headers.get(TOKEN_HEADER)
        if given is None and not header_only and query.get("token"):
            given = query["token"][0]
        return given is not None and hmac.compare_digest(given, self.server.live.token)

    # -- replies ---------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # -- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        refused = self._refused(post=False)
        if refused:
            self._error(403, refused)
            return
        if not self._token_ok(query, header_only=False):
            self._error(403, "open the address seamtape serve printed: it carries the token")
            return
        live = self.server.live
        if parts.path == "/":
            self._send(200, live.page().encode("utf-8"), "text/html; charset=utf-8")
        elif parts.path == "/api/data":
            self._send(200, live.document(), "application/json")
        elif parts.path == "/api/events":
            self._events()
        else:
            self._error(404, "no such page")

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        refused = self._refused(post=True)
        if refused:
            self._error(403, refused)
            return
        if not self._token_ok({}, header_only=True):
            self._error(403, f"a POST needs the {TOKEN_HEADER} header")
            return
        if parts.path != "/api/fork":
            self._error(404, "no such endpoint")
            return
        if self.headers.get_content_type() != "application/json":
            self._error(415, "send JSON")
            return
        size = int(self.headers.get("Content-Length") or 0)
        if not 0 < size <= _MAX_BODY:
            self._error(413, "a fork request is a small JSON document")
            return
        try:
            request = json.loads(self.rfile.read(size))
        except ValueError:
            self._error(400, "the request is not JSON")
            return
        try:
            reply = self.server.live.fork(request if isinstance(request, dict) else {})
        except SeamtapeError as exc:
            self._error(400, str(exc))
            return
        except Exception as exc:  # the agent's own failure: the page says what it was
            self._error(500, f"the fork failed: {type(exc).__name__}: {exc}")
            return
        self._json(200, reply)

    def _events(self) -> None:
        live = self.server.live
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.close_connection = True
        version = live.version
        try:
            self.wfile.write(f"retry: 1000\nevent: update\ndata: {version}\n\n".encode())
            self.wfile.flush()
            while not live.stopped:
                now = live.wait_for_change(version, _KEEPALIVE)
                if now > version:
                    version = now
                    self.wfile.write(f"event: update\ndata: {version}\n\n".encode())
                else:
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
