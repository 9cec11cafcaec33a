"""The localhost proxy seam: a base-URL proxy on 127.0.0.1 for clients that are not Python.

A client whose base URL points here (curl, a Node or Go service, a coding agent's CLI) is
served through one httpx2 transport per upstream, built by a session: each request becomes an
httpx2 request for its upstream and goes through the same cursor as the in-process seams, so
record, replay, fork, matching, redaction and divergence are theirs. The response is written
back as it arrives, chunk by chunk, with its status and headers.

The server is the standard library's ``ThreadingHTTPServer``: a thread per connection is
plenty for one developer's agent on 127.0.0.1, it streams by writing and flushing, and it
adds no dependency beside the simulator's own server.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from seamtape._errors import DivergenceError, SeamtapeError
from seamtape._loopback import LoopbackServer

__all__ = [
    "DIVERGENCE_STATUS",
    "HOST",
    "ProxyServer",
    "Route",
    "parse_routes",
    "rewriting_transport",
    "routes_from_text",
    "routes_text",
]

HOST = "127.0.0.1"
# An unmatched request's answer: not a status any SDK retries (they retry 408, 409, 429 and
# 5xx), so the divergence reaches the agent once, as an API error carrying its message.
DIVERGENCE_STATUS = 412
UPSTREAM_DOWN_STATUS = 502

# Connection-level headers are the two hops' own business, never forwarded (RFC 9110 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Long enough for a slow model's stream; a read waits this long between two chunks.
_TIMEOUT = {"connect": 30.0, "read": 600.0, "write": 60.0, "pool": 30.0}


@dataclass(frozen=True, slots=True)
class Route:
    """Requests under ``/name/`` go to ``upstream`` (the default route has no name, no prefix)."""

    name: str
    upstream: str

    @property
    def prefix(self) -> str:
        return f"/{self.name}" if self.name else ""


def parse_routes(specs: Sequence[str]) -> list[Route]:
    """Routes from ``URL`` or ``name=URL`` specs; SeamtapeError names the first bad one."""
    routes: list[Route] = []
    for spec in specs:
        name, url = "", spec.strip()
        head, sep, tail = url.partition("=")
        if sep and "/" not in head and ":" not in head:
            name, url = head, tail
            if not _NAME.fullmatch(name):
                raise SeamtapeError(
                    f"upstream {spec!r}: the name must be letters, digits, '-', '_' or '.'"
                )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SeamtapeError(
                f"upstream {spec!r}: expected URL or name=URL with an http(s) URL, "
                "e.g. anthropic=https://api.anthropic.com"
            )
        if parts.query or parts.fragment:
            raise SeamtapeError(f"upstream {spec!r}: a base URL has no query or fragment")
        if any(r.name == name for r in routes):
            what = f"name {name!r}" if name else "default (unnamed) upstream"
            raise SeamtapeError(f"upstream {spec!r}: the {what} is given twice")
        routes.append(Route(name, url.rstrip("/")))
    if not routes:
        raise SeamtapeError("give at least one --upstream URL (or name=URL)")
    return routes


def routes_text(routes: Iterable[Route]) -> str:
    """The routes as a run's ``upstream``: a plain URL for one default route, else name=URL."""
    routes = list(routes)
    if len(routes) == 1 and not routes[0].name:
        return routes[0].upstream
    return " ".join(f"{r.name}={r.upstream}" if r.name else r.upstream for r in routes)


def routes_from_text(text: str | None) -> list[Route]:
    """The routes a proxy recorded a run through, read back from its ``upstream``."""
    if not text:
        raise SeamtapeError(
            "the run names no upstream, so the proxy cannot tell which path prefix went where"
        )
    return parse_routes(text.split())


def rewriting_transport(inner: Any, recorded: str, live: str) -> Any:
    """An httpx2 transport that sends requests recorded against ``recorded`` to ``live``."""
    import httpx2  # noqa: PLC0415  (the httpx2 extra)

    class Rewrite(httpx2.BaseTransport):
        def handle_request(self, request: Any) -> Any:
            url = str(request.url)
            if url.startswith(recorded):
                request.url = httpx2.URL(live + url[len(recorded) :])
                request.headers["host"] = request.url.netloc.decode("ascii")
            return inner.handle_request(request)

        def close(self) -> None:
            inner.close()

    return Rewrite()


class ProxyServer:
    """A base-URL proxy on 127.0.0.1; ``transports`` maps each route's name to its transport.

    ``log`` gets one line per request (and the whole divergence when one is answered);
    ``prepare`` may swap a request's body before the cursor sees it (ignorable paths).
    """

    def __init__(
        self,
        routes: Sequence[Route],
        transports: Mapping[str, Any],
        *,
        port: int = 0,
        log: Callable[[str], None] | None = None,
        prepare: Callable[[str, str, bytes], bytes] | None = None,
    ) -> None:
        missing = [r.name for r in routes if r.name not in transports]
        if missing:
            raise ValueError(f"no transport for route(s) {missing}")
        # Longest prefix first, the default route (empty prefix) last.
        self.routes = sorted(routes, key=lambda r: -len(r.prefix))
        self.transports = dict(transports)
        self.log = log or (lambda line: None)
        # (method, upstream URL, body) -> the body the cursor sees (see IgnoringPaths)
        self.prepare = prepare
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def route_url(self, route: Route) -> str:
        """The base URL a client uses for ``route``: the proxy's, plus the route's prefix."""
        return self.base_url + route.prefix

    def match(self, path: str) -> tuple[Route, str] | None:
        """The route for a request path and the path the upstream gets; None if none applies."""
        for route in self.routes:
            if not route.prefix:
                return route, path
            if path == route.prefix or path.startswith((route.prefix + "/", route.prefix + "?")):
                return route, path[len(route.prefix) :] or "/"
        return None

    def start(self) -> ProxyServer:
        try:
            self._server = _Server(self, self._port)
        except OSError as exc:
            raise SeamtapeError(
                f"cannot listen on {HOST}:{self._port}: {exc.strerror or exc}"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def divergence_body(exc: DivergenceError) -> dict[str, Any]:
    """An error body the Anthropic, OpenAI and Gemini SDKs all read a message from."""
    return {
        "type": "error",
        "error": {
            "type": "seamtape_divergence",
            "code": DIVERGENCE_STATUS,
            "status": "FAILED_PRECONDITION",
            "message": exc.message(),
            "run": exc.run,
            "step": exc.step,
            "method": exc.method,
            "url": exc.url,
            "path": exc.path,
            "recorded": _jsonable(exc.recorded),
            "new": _jsonable(exc.new),
            "hint": (
                "if this field differs on every run (a timestamp, an id made by the client), "
                "replay with --ignore-path PATH"
                if exc.path.startswith("$")
                else ""
            ),
        },
    }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


class _Server(LoopbackServer):
    """The proxy's server: the handlers find the proxy on it."""

    def __init__(self, proxy: ProxyServer, port: int) -> None:
        self.proxy = proxy
        super().__init__(port, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each stream chunk is its own small write
    server: _Server

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the proxy's log is ProxyServer.log, one line per request

    def _handle(self) -> None:
        import httpx2  # noqa: PLC0415  (the httpx2 extra)

        proxy = self.server.proxy
        body = self._read_body()
        if not self.path.startswith("/"):  # absolute-form: the client took us for http_proxy
            message = (
                "this is a base-URL proxy, not an HTTP proxy: set the SDK's base URL "
                f"(e.g. ANTHROPIC_BASE_URL={proxy.base_url}) instead of HTTP_PROXY"
            )
            proxy.log(f"{self.command} {self.path} → 400 ({message})")
            error = {"type": "seamtape_not_a_forward_proxy", "message": message}
            self._send_json(400, {"type": "error", "error": error})
            return
        found = proxy.match(self.path)
        if found is None:
            prefixes = ", ".join(r.prefix + "/" for r in proxy.routes)
            message = f"no upstream for {self.path}: this proxy serves {prefixes}"
            proxy.log(f"{self.command} {self.path} → 404 ({message})")
            self._send_json(
                404, {"type": "error", "error": {"type": "seamtape_no_route", "message": message}}
            )
            return
        route, rest = found
        url = route.upstream + rest
        if proxy.prepare is not None:
            body = proxy.prepare(self.command, url, body)
        headers = [
            (k, v)
            for k, v in self.headers.items()
            if k.lower() not in _HOP_BY_HOP
            and k.lower() not in ("host", "content-length", "expect")
        ]
        request = httpx2.Request(
            self.command,
            url,
            headers=headers,
            content=body,
            extensions={"timeout": _TIMEOUT},
        )
        try:
            response = proxy.transports[route.name].handle_request(request)
        except DivergenceError as exc:
            proxy.log(f"{self.command} {self.path} → {DIVERGENCE_STATUS} {exc.message()}")
            self._send_json(
                DIVERGENCE_STATUS, divergence_body(exc), [("x-seamtape-divergence", "true")]
            )
            return
        except httpx2.TransportError as exc:
            message = f"{type(exc).__name__}: {exc}"
            proxy.log(f"{self.command} {self.path} → {UPSTREAM_DOWN_STATUS} ({message})")
            error = {"type": "seamtape_upstream_error", "message": message}
            self._send_json(UPSTREAM_DOWN_STATUS, {"type": "error", "error": error})
            return
        proxy.log(f"{self.command} {self.path} → {response.status_code}")
        self._relay(response)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        size = int(self.headers.get("content-length") or 0)
        return self.rfile.read(size) if size else b""

    def _relay(self, response: Any) -> None:
        """Write the response line, headers and body, each chunk the moment it is read."""
        import httpx2  # noqa: PLC0415  (the httpx2 extra)

        raw = response.headers.raw
        sized = any(k.lower() == b"content-length" for k, _ in raw)
        bodiless = self.command == "HEAD" or response.status_code in (204, 304)
        chunked = not sized and not bodiless
        reason = response.extensions.get("reason_phrase", b"").decode("latin-1")
        self.send_response_only(response.status_code, reason or None)
        for name, value in raw:
            if name.lower().decode("latin-1") not in _HOP_BY_HOP:
                self.send_header(name.decode("latin-1"), value.decode("latin-1"))
        if chunked:
            self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            if not bodiless:
                for chunk in response.iter_raw():
                    if chunk:
                        self.wfile.write(
                            b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
                        )
                        self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except httpx2.TransportError:
            # The upstream cut the stream (live, or as recorded): the client sees the same cut.
            self.close_connection = True
        finally:
            response.close()

    def _send_json(self, status: int, doc: Any, extra: Sequence[tuple[str, str]] = ()) -> None:
        data = json.dumps(doc).encode()
        self.send_response_only(status)
        self.send_header("content-type", "application/json")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
