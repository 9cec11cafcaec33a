"""Shared fixtures: a small real HTTP server on 127.0.0.1 that the seams record against."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


class Origin:
    """A real HTTP/1.1 server on 127.0.0.1 with a few routes the tests need.

    POST /json      echoes the JSON body with a per-server counter; headers request-id,
                    retry-after-ms, x-ratelimit-remaining
    POST /sse       an SSE stream of ``n`` events (from the body); when ``gate`` is set the
                    server holds back every event after the first until the gate opens
    POST /flaky…    429 with retry-after: 0 on the first call, then like /json
    POST /cut       starts a chunked stream and closes the connection mid-way
    """

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.gate: threading.Event | None = None
        self.flaky_calls = 0
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size)
                with origin.lock:
                    origin.count += 1
                    n = origin.count
                route = self.path.split("?")[0]
                if route.startswith("/flaky"):
                    with origin.lock:
                        origin.flaky_calls += 1
                        first = origin.flaky_calls == 1
                    if first:
                        self._json(
                            429,
                            {"error": "slow down"},
                            n,
                            {"retry-after": "0", "retry-after-ms": "5"},
                        )
                        return
                    route = "/json"
                if route.startswith("/json"):
                    payload = json.loads(body or b"{}")
                    self._json(200, {"n": n, "echo": payload}, n)
                elif route == "/sse":
                    self._sse(json.loads(body or b"{}").get("n", 3), n)
                elif route == "/cut":
                    self._cut()
                else:
                    self._json(404, {"error": "no route"}, n)

            def _json(
                self, status: int, payload: Any, n: int, extra: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response_only(status)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", f"req_{n:04d}")
                self.send_header("x-ratelimit-remaining", str(1000 - n))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _sse(self, events: int, n: int) -> None:
                self.send_response_only(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("request-id", f"req_{n:04d}")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for i in range(events):
                    if i == 1 and origin.gate is not None:
                        origin.gate.wait(timeout=10)
                    self._chunk(f"event: tick\ndata: {json.dumps({'i': i})}\n\n".encode())
                self._chunk(b"")

            def _cut(self) -> None:
                self.send_response_only(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self._chunk(b"data: partial\n\n")
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.stop()


@pytest.fixture
def tape_path(tmp_path: Path) -> Path:
    return tmp_path / "run.tape"
