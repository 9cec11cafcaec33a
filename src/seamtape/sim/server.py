"""The simulator's HTTP server: a real HTTP/1.1 server on 127.0.0.1 that speaks every wire format.

Requests are parsed and responses built by ``seamtape.wire``; this module only routes, logs,
applies faults and moves bytes. Responses carry no Date, Server or other time-varying header,
and request ids come from (seed, request index), so identical runs give identical bytes.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from seamtape import wire
from seamtape._loopback import LoopbackServer

from .faults import Fault, FaultPlan, FaultRule
from .policies import Draws, Policy, StochasticPolicy, policy_from_spec

HOST = "127.0.0.1"
RATE_LIMIT = 1000  # requests per window advertised in the rate-limit headers

# Hop-by-hop and framing headers the server sets itself; a codec's copy would conflict.
_FRAMING = {"content-length", "transfer-encoding", "connection", "date", "server"}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the simulator received it. ``index`` counts from 0 in arrival order."""

    index: int
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    api: str | None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass(frozen=True, slots=True)
class RecordedResponse:
    """What the simulator sent back: ``chunks`` are the frames (one for a JSON body).

    ``complete`` is ``False`` when a fault cut the response short.
    """

    index: int
    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    complete: bool

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class Simulator:
    """An in-process provider simulator. Use ``serve()`` or ``with Simulator(...) as sim``.

    Base URLs, as each SDK wants them: ``anthropic_base_url`` (no ``/v1``),
    ``openai_base_url`` (ends in ``/v1``), ``gemini_base_url`` (the host) and
    ``bedrock_endpoint_url`` (the host, for boto3's ``endpoint_url``).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        port: int = 0,
        faults: Mapping[int, Fault] | FaultRule | None = None,
        seed: int | None = None,
    ) -> None:
        self.policy: Policy = policy if policy is not None else StochasticPolicy()
        self.seed: int = seed if seed is not None else int(getattr(self.policy, "seed", 0))
        self.faults = FaultPlan(faults)
        self._requested_port = port
        self._lock = threading.Condition()  # guards the logs; notified when a request ends
        self._busy = 0  # requests received and not yet fully answered
        self._requests: list[RecordedRequest] = []
        self._responses: list[RecordedResponse] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started; use serve() or Simulator.start()")
        return self._server.server_address[1]

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the listening socket is bound to."""
        if self._server is None:
            raise RuntimeError("simulator not started; use serve() or Simulator.start()")
        host, port = self._server.socket.getsockname()[:2]
        return host, port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def gemini_base_url(self) -> str:
        return self.base_url

    @property
    def bedrock_endpoint_url(self) -> str:
        return self.base_url

    # --- logs ---------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def responses(self) -> list[RecordedResponse]:
        """A snapshot of every response finished so far, in completion order."""
        with self._lock:
            return list(self._responses)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every request received so far has been answered to its last byte.

        A client can return before the server is done: OpenAI's SDK stops at ``data: [DONE]``
        and boto3 returns a streaming body after the headers. Call this before reading
        ``responses`` while the simulator is still serving (``stop()`` waits by itself).
        """
        with self._lock:
            if not self._lock.wait_for(lambda: self._busy == 0, timeout):
                raise TimeoutError(f"{self._busy} request(s) still in flight after {timeout} s")

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests."""
        self.faults.inject(fault, times)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._stopping.clear()
        self._server = _Server(self, self._requested_port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # bounds how long stop() waits for the loop
            name=f"seamtape-sim-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread. Idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # wakes handlers sleeping on a delay or holding a stream
        server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- used by the handler ------------------------------------------------------------------

    def _record(
        self, handler: BaseHTTPRequestHandler, body: bytes, api: str | None
    ) -> RecordedRequest:
        headers = list(handler.headers.items())
        with self._lock:
            index = len(self._requests)
            request = RecordedRequest(index, handler.command, handler.path, headers, body, api)
            self._requests.append(request)
            self._busy += 1
        return request

    def _done(self) -> None:
        with self._lock:
            self._busy -= 1
            self._lock.notify_all()

    def _finish(self, response: RecordedResponse) -> None:
        with self._lock:
            self._responses.append(response)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _hold(self, event: threading.Event) -> None:
        # Poll so that stop() can end a handler whose test never sets the event.
        while not event.wait(0.05) and not self._stopping.is_set():
            pass

    def _provider_headers(self, provider: str, index: int, status: int) -> list[tuple[str, str]]:
        """The ids and rate-limit headers each SDK reads, derived from (seed, index)."""
        draws = Draws(self.seed, "request", index)
        remaining = str(0 if status == 429 else RATE_LIMIT - 1 - index % RATE_LIMIT)
        if provider == "anthropic":
            return [
                ("request-id", "req_sim" + draws.hex(24)),
                ("anthropic-ratelimit-requests-limit", str(RATE_LIMIT)),
                ("anthropic-ratelimit-requests-remaining", remaining),
            ]
        if provider == "openai":
            return [
                ("x-request-id", "req_sim" + draws.hex(26)),
                ("x-ratelimit-limit-requests", str(RATE_LIMIT)),
                ("x-ratelimit-remaining-requests", remaining),
                ("x-ratelimit-reset-requests", "60s"),
            ]
        if provider == "bedrock":
            h = draws.hex(32)
            return [("x-amzn-requestid", f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")]
        return []


# --- HTTP plumbing ----------------------------------------------------------------------------


class _Server(LoopbackServer):
    """The simulator's server: the handlers find the simulator on it."""

    def __init__(self, sim: Simulator, port: int) -> None:
        self.sim = sim
        super().__init__(port, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers, body and each stream frame are separate small writes; with Nagle on, a
    # keep-alive client's delayed ACK stalls every response by ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def send_response(self, code: int, message: str | None = None) -> None:
        # The base class adds Server and Date headers; responses must be byte-deterministic.
        self.send_response_only(code, message)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is Simulator.requests

    def _handle(self) -> None:
        sim = self.server.sim
        body = self._read_body()
        url = f"http://{HOST}:{self.server.server_port}{self.path}"
        request = sim._record(self, body, wire.detect(self.command, url))
        try:
            self._respond(request, url)
        finally:
            sim._done()

    def _respond(self, request: RecordedRequest, url: str) -> None:
        sim = self.server.sim
        fault = sim.faults.take(request) or Fault()
        api = request.api
        if api is None:
            self._send_not_found(request)
            return
        sim._pause(fault.first_byte_delay)
        provider = api.split(".", 1)[0]
        error_status = fault.status_for(provider)
        stream = False
        if error_status:
            response = wire.encode_error(api, error_status, fault.message)
        else:
            response, stream = self._answer(sim, api, url, request.body)
        headers = sim._provider_headers(provider, request.index, response.status)
        if fault.retry_after is not None and response.status in (429, 503, 529):
            headers += _retry_headers(fault.retry_after)
        self._send(request.index, response, headers, stream=stream, fault=fault)

    def _answer(
        self, sim: Simulator, api: str, url: str, body: bytes
    ) -> tuple[wire.EncodedResponse, bool]:
        """Decode the request, ask the policy, encode its answer (or the provider's error)."""
        try:
            step = wire.decode_request(api, url, body)
            stream = wire.is_stream(api, url, body)
        except wire.CodecError as exc:
            message = f"seamtape sim could not parse the request: {exc}"
            return wire.encode_error(api, 400, message), False
        try:
            return wire.encode_response(sim.policy.respond(step), stream=stream), stream
        except Exception as exc:  # a policy bug must reach the client, not kill the thread
            message = f"seamtape sim policy failed: {type(exc).__name__}: {exc}"
            return wire.encode_error(api, 500, message), False

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_not_found(self, request: RecordedRequest) -> None:
        message = (
            f"seamtape sim has no route for {request.method} {request.path}. Known routes: "
            "POST /v1/messages, /v1/chat/completions, /v1/responses, "
            "/v1beta/models/{model}:generateContent, :streamGenerateContent, "
            "/model/{id}/invoke, /invoke-with-response-stream, /converse, /converse-stream"
        )
        body = _json({"error": {"code": 404, "type": "not_found", "message": message}})
        response = wire.EncodedResponse(404, [("content-type", "application/json")], [body])
        self._send(request.index, response, [], stream=False, fault=Fault())

    def _send(
        self,
        index: int,
        response: wire.EncodedResponse,
        extra: list[tuple[str, str]],
        *,
        stream: bool,
        fault: Fault,
    ) -> None:
        sim = self.server.sim
        headers = [(k, v) for k, v in response.headers if k.lower() not in _FRAMING]
        named = {k.lower() for k, _ in headers}
        headers += [(k, v) for k, v in extra if k.lower() not in named]  # the codec's own win
        chunked = stream and response.status == 200
        body = response.body
        framing = (
            ("transfer-encoding", "chunked") if chunked else ("content-length", str(len(body)))
        )
        headers.append(framing)
        self.send_response(response.status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        sent: list[bytes] = []
        complete = False

        def finish() -> None:
            # Logged before the last bytes leave, so a client that has read a whole response
            # always finds it in Simulator.responses.
            sim._finish(RecordedResponse(index, response.status, headers, list(sent), complete))

        try:
            if chunked:
                complete = self._send_frames([c for c in response.chunks if c], sent, fault)
                if complete:
                    finish()
                    self.wfile.write(b"0\r\n\r\n")
            elif fault.cut_after is not None and body:
                sent.append(body[: len(body) // 2])  # a truncated JSON body
                self.wfile.write(sent[0])
            else:
                sent.append(body)
                complete = True
                finish()
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client hung up; nothing left to tell it
        finally:
            if not complete:
                self.close_connection = True  # no terminator: the client sees a cut response
                finish()

    def _send_frames(self, chunks: list[bytes], sent: list[bytes], fault: Fault) -> bool:
        """Write each frame as its own HTTP chunk, flushed; ``False`` if a fault cut it short.

        The terminating zero-length chunk is left to the caller.
        """
        sim = self.server.sim
        for i, frame in enumerate(chunks):
            if fault.cut_after is not None and i >= fault.cut_after:
                return False
            if fault.hold is not None and i == fault.hold_after:
                sim._hold(fault.hold)
            if i:
                sim._pause(fault.frame_delay)
            if sim._stopping.is_set():
                return False
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
            sent.append(frame)
        return fault.cut_after is None  # a cut past the last frame still drops the terminator


def _json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _retry_headers(seconds: float) -> list[tuple[str, str]]:
    # retry-after is whole seconds by spec; the SDKs prefer the precise retry-after-ms.
    whole = int(seconds) if seconds == int(seconds) else int(seconds) + 1
    return [("retry-after", str(whole)), ("retry-after-ms", str(round(seconds * 1000)))]


# --- entry points -----------------------------------------------------------------------------


@contextlib.contextmanager
def serve(
    policy: Policy | None = None,
    *,
    port: int = 0,
    faults: Mapping[int, Fault] | FaultRule | None = None,
    seed: int | None = None,
) -> Iterator[Simulator]:
    """Run a simulator on 127.0.0.1 (an ephemeral port by default) for the ``with`` block.

    ``policy`` defaults to ``StochasticPolicy()``. ``faults`` maps request indexes to faults,
    or is a callable ``(RecordedRequest) -> Fault | None``. ``seed`` (default: the policy's)
    seeds the request ids.
    """
    sim = Simulator(policy, port=port, faults=faults, seed=seed)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def main(port: int, policy_spec: str | None) -> None:
    """Serve in the foreground until Ctrl-C, printing the base URL for each SDK."""
    policy = policy_from_spec(policy_spec)
    with serve(policy, port=port) as sim:
        print(f"seamtape sim on {sim.base_url}  (policy: {policy_spec or 'stochastic'})")
        print(f"  ANTHROPIC_BASE_URL={sim.anthropic_base_url}")
        print(f"  OPENAI_BASE_URL={sim.openai_base_url}")
        print(f"  gemini: HttpOptions(base_url={sim.gemini_base_url!r})")
        print(f"  AWS_ENDPOINT_URL_BEDROCK_RUNTIME={sim.bedrock_endpoint_url}")
        print("Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped.")
