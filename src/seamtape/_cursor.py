"""The cursor: the one place that decides what happens to a request.

Record, replay and fork are modes of this one class. A request either is served from the
tape (a ``Playback``) or goes live (a ``Ticket`` that records the response as it arrives).
The seams above translate library objects; nothing here knows httpx or botocore.
"""

from __future__ import annotations

import json
import re
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from seamtape._errors import DamagedTapeError, DivergenceError, GuardTripped, SecretWarning
from seamtape._match import Redaction, canonical_url, explain, find_secret, redact_headers
from seamtape._nondet import LiveDraws, NondetSource, ServedDraws
from seamtape.tape import (
    Digest,
    Draw,
    Exchange,
    Record,
    Tape,
    blob_hash,
    chunks_hash,
    exchange_hash,
)

__all__ = [
    "Cursor",
    "Guard",
    "HeaderSource",
    "Matching",
    "Playback",
    "Substitute",
    "TapeRequest",
    "TapeResponse",
    "Ticket",
]

# Request headers are only read when an exchange is recorded, never on the replay path.
HeaderSource = Callable[[], Iterable[tuple[str | bytes, str | bytes]]]

# (method, url, body) -> (status, headers, body chunks) to answer with, or None to go live.
Substitute = Callable[[str, str, bytes], tuple[int, list[tuple[str, str]], list[bytes]] | None]

# (method, url, body) of a live request before it leaves; raises GuardTripped to stop the run.
# The session builds it from the lint rules, so the cursor imports no lens.
Guard = Callable[[str, str, bytes], None]

_PREFETCH = 128  # exchanges whose stored bodies are read from the tape in one query


@dataclass(frozen=True)
class TapeRequest:
    """A request as a ``before_record_request`` hook sees it (and returns it, changed)."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class TapeResponse:
    """A response as a ``before_record_response`` hook sees it (and returns it, changed)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Matching:
    """Escape hatches beside the strict default, for the pytest plugin's ``tape_config``.

    - ``ignore_paths``: JSON paths (``$.metadata.user_id``, ``$.messages[*].id``) left out
      when a request body is compared with the recorded one;
    - ``repeats``: a recorded exchange may answer the same request again, once it is used;
    - ``extra``: exchanges of read-only tapes, served in any order and as often as asked
      when the run's own do not match (matched on method, path, query and body, whatever
      the host), before anything goes live;
    - ``before_record_request``: changes a request before it is stored and before it is
      matched; the live request goes out unchanged;
    - ``before_record_response``: changes a response before it is stored; the agent gets
      the live one while recording, the stored one on replay.
    """

    ignore_paths: tuple[str, ...] = ()
    repeats: bool = False
    extra_tapes: tuple[Any, ...] = ()  # paths; the session opens them and hands ``extra`` on
    extra: tuple[Exchange, ...] = ()
    before_record_request: Callable[[TapeRequest], TapeRequest] | None = None
    before_record_response: Callable[[TapeResponse], TapeResponse] | None = None

    @property
    def lenient(self) -> bool:
        return bool(self.ignore_paths or self.repeats or self.extra)


@dataclass(slots=True)
class Playback:
    """A recorded response, ready for a seam to hand back to its library."""

    step: int
    status: int
    headers: list[Any]  # [name, value] pairs, text when ASCII, else latin-1 bytes
    http_version: str
    reason: str
    parts: list[bytes]  # the body, split where the recorded stream's chunks arrived
    error: dict[str, str] | None  # a transport error to raise after the parts


class Cursor:
    """Serves a run's exchanges from the tape, records new ones, or serves a prefix then records.

    ``served`` are the recorded exchanges to serve (replay, or a fork's prefix); ``live``
    says whether requests past them go to the network and are recorded. With ``extend``
    (a live cursor), a request that does not match ends the serving instead of diverging:
    it and everything after it are recorded live, and the recording's remaining exchanges
    and draws are dropped (pytest's ``--tape-mode=new``).
    """

    def __init__(
        self,
        tape: Tape,
        run: str,
        *,
        served: Sequence[Exchange] = (),
        served_draws: Sequence[Draw] = (),
        live: bool,
        copy_served: bool = False,
        substitute: Substitute | None = None,
        extend: bool = False,
        matching: Matching | None = None,
        guard: Guard | None = None,
        redaction: Redaction | None = None,
    ) -> None:
        if extend and not live:
            raise ValueError("an extending cursor records what it cannot serve: it must be live")
        self.tape = tape
        self.run = run
        self.live = live
        self._lock = threading.Lock()
        self._digest = Digest()
        self.divergence: DivergenceError | None = None
        self._guard = guard
        self.tripped: GuardTripped | None = None  # once tripped, no request leaves again
        # Serving state.
        self._served = list(served)
        self._consumed = [False] * len(self._served)
        self._next = 0  # lowest position not yet consumed
        self._prefetched = 0  # exchanges before this position have had their bodies read
        self._index: dict[tuple[str, str, bytes], deque[int]] | None = None
        self._copy_served = copy_served  # a fork writes its served prefix into the new run
        self._substitute = substitute  # a fork's answer to the first request past the prefix
        self._extend = extend
        self._matching = matching or Matching()
        # Secrets masked in bodies before they are stored, and in a replayed request before it
        # is compared: the stored body is already redacted, so most requests match unredacted.
        self._redaction = redaction
        self._parsed_headers: dict[str, list[Any]] = {}
        # Recording state.
        self._seq = 0
        self._in_flight = 0
        self._batch = 0
        self._draw_seq = 0
        self._pending_draws: list[Draw] = []
        self._open: set[Ticket] = set()
        self.live_exchanges = 0
        self.served_exchanges = 0
        live_draws = LiveDraws(self._record_draw) if live else None
        served_source = ServedDraws(
            served_draws,
            run=run,
            on_served=self._serve_draw,
            # An extending cursor answers a draw that differs live; it is no divergence.
            on_divergence=(lambda error: None) if extend else self._latch,
            then=live_draws,
        )
        self._draw_source: ServedDraws | _ServedUntilMismatch = served_source
        if extend:
            assert live_draws is not None
            self._draw_source = _ServedUntilMismatch(served_source, live_draws)
        self.nondet = NondetSource(self._draw_source)

    # -- the decision ----------------------------------------------------------------------

    def begin(self, method: str, url: str, headers: HeaderSource, body: bytes) -> Playback | Ticket:
        """Decide a request's fate: served from the tape, or a live ``Ticket`` to record."""
        if self.divergence is not None:
            raise self.divergence
        if self.tripped is not None:
            raise self.tripped
        hook = self._matching.before_record_request
        if hook is not None:
            changed = hook(TapeRequest(method, url, _text_pairs(headers()), body))
            method, url, body = changed.method, changed.url, changed.body
            headers = lambda: changed.headers  # noqa: E731
        curl = canonical_url(url)
        with self._lock:
            if self._next < len(self._served):
                playback = self._serve(method, curl, body)
                if playback is not None:
                    return playback
            if self._matching.lenient:
                playback = self._alternative(method, curl, body)
                if playback is not None:
                    return playback
            if not self.live:
                self._diverge_unrecorded(method, curl)
        if self._guard is not None:
            self._check_guard(method, curl, body)
        with self._lock:
            ticket = self._ticket(method, curl, headers, body)
            substitute, self._substitute = self._substitute, None
        if substitute is not None:
            answer = substitute(method, curl, body)
            if answer is not None:
                return ticket.play(*answer)
        return ticket

    def _check_guard(self, method: str, url: str, body: bytes) -> None:
        """Let the guard see the request before it leaves; a trip stops this and every later one."""
        assert self._guard is not None
        try:
            self._guard(method, url, body)
        except GuardTripped as trip:
            if self.tripped is None:
                self.tripped = trip
            raise

    def _serve(
        self, method: str, url: str, body: bytes, *, redacted: bool = False
    ) -> Playback | None:
        """The recorded response to this request; None when an extending cursor stops serving."""
        pos = self._next
        expected = self._served[pos]
        received: bytes | None = None
        if expected.method == method and expected.url == url:
            self._prefetch(pos)
            # Equal bytes have equal hashes: comparing against the recorded body proves
            # the received body's sha256 is the recorded blob's, without re-hashing it.
            try:
                if self.tape.body_equals(expected.request_body, body):
                    return self._consume(pos, expected.request_body)
                received = blob_hash(body)
                if received == expected.request_body:
                    # The agent sent what was recorded, but the stored copy says otherwise.
                    self._diverge_damaged(
                        expected, "the stored request body does not match its hash"
                    )
                if self._matching.ignore_paths and self._loosely_equal(
                    self.tape.blob(expected.request_body), body
                ):
                    return self._consume(pos, expected.request_body)
            except DamagedTapeError as exc:
                self._diverge_damaged(expected, exc.reason)
        received = received or blob_hash(body)
        for candidate in self._candidates(method, url, received):
            if self._served[candidate].batch == expected.batch:
                return self._consume(candidate, received)
        if self._redaction is not None and not redacted:
            # A request that carries a secret was stored redacted: compare it redacted too.
            masked = self._redaction.apply(body)
            if masked is not body:
                return self._serve(method, url, masked, redacted=True)
        if self._matching.lenient:
            playback = self._alternative(method, url, body)
            if playback is not None:
                return playback
        if self._extend:
            self._stop_serving()
            return None
        self._diverge_mismatch(method, url, body)
        raise AssertionError("unreachable")

    def _stop_serving(self) -> None:
        """Drop the recording's unserved exchanges and draws: from here on the run is live."""
        kept = [ex for ex, done in zip(self._served, self._consumed, strict=True) if done]
        self._served, self._consumed = kept, [True] * len(kept)
        self._next, self._index = len(kept), None
        if isinstance(self._draw_source, _ServedUntilMismatch):
            self._draw_source.stopped = True

    def _candidates(self, method: str, url: str, body_hash: bytes) -> list[int]:
        if self._index is None:
            index: dict[tuple[str, str, bytes], deque[int]] = {}
            for pos, ex in enumerate(self._served):
                index.setdefault((ex.method, ex.url, ex.request_body), deque()).append(pos)
            self._index = index
        queue = self._index.get((method, url, body_hash))
        if not queue:
            return []
        while queue and self._consumed[queue[0]]:
            queue.popleft()
        return [p for p in queue if not self._consumed[p]][:1]

    def _consume(self, pos: int, request_hash: bytes) -> Playback:
        ex = self._served[pos]
        # The digest covers the bytes the agent is handed: the tape checks a body against its
        # hash the first time it reads it, and what fails never reaches the agent.
        try:
            response_body = self.tape.blob(ex.response_body, remember=False)
        except DamagedTapeError as exc:
            self._diverge_damaged(ex, exc.reason)
        self._consumed[pos] = True
        while self._next < len(self._served) and self._consumed[self._next]:
            self._next += 1
        self.served_exchanges += 1
        self._digest.add_exchange_parts(
            ex.seq,
            ex.method,
            ex.url,
            request_hash,
            ex.status,
            ex.response_headers_json,
            ex.response_body,
            ex.error_json,
        )
        if self._copy_served:
            self._seq = max(self._seq, ex.seq)
            copy = Exchange(**{**ex.__dict__, "run": self.run, "_tape": None})
            self.tape.add_exchange(copy, None, None, self._take_draws())
        return Playback(
            step=ex.seq,
            status=ex.status,
            headers=self._headers(ex.response_headers_json),
            http_version=ex.http_version,
            reason=ex.reason,
            parts=_split(response_body, ex.chunks_json),
            error=None if ex.error_json is None else ex.error,
        )

    def _alternative(self, method: str, url: str, body: bytes) -> Playback | None:
        """An answer the strict order does not give: a used exchange again (``repeats``),
        or one from an extra tape. Neither counts in the digest."""
        if self._matching.repeats:
            for pos, ex in enumerate(self._served):
                if self._consumed[pos] and self._matches(ex, method, url, body, self.tape):
                    return self._replay_again(ex, self.tape)
        where = _path_of(url)
        for ex in self._matching.extra:
            if ex.method == method and _path_of(ex.url) == where:
                tape = ex._tape
                assert tape is not None
                if self._matches(ex, method, ex.url, body, tape):
                    return self._replay_again(ex, tape)
        return None

    def _matches(self, ex: Exchange, method: str, url: str, body: bytes, tape: Tape) -> bool:
        if (ex.method, ex.url) != (method, url):
            return False
        if tape.body_equals(ex.request_body, body):
            return True
        return bool(self._matching.ignore_paths) and self._loosely_equal(
            tape.blob(ex.request_body), body
        )

    def _loosely_equal(self, recorded: bytes, received: bytes) -> bool:
        """Equal once the ``ignore_paths`` are left out of both JSON bodies."""
        try:
            old, new = json.loads(recorded), json.loads(received)
        except ValueError:
            return False
        for path in self._matching.ignore_paths:
            old, new = _without(old, path), _without(new, path)
        return bool(old == new)

    def _replay_again(self, ex: Exchange, tape: Tape) -> Playback:
        self.served_exchanges += 1
        return Playback(
            step=ex.seq,
            status=ex.status,
            headers=_header_pairs(ex.response_headers_json),
            http_version=ex.http_version,
            reason=ex.reason,
            parts=_split(tape.blob(ex.response_body, remember=False), ex.chunks_json),
            error=ex.error,
        )

    def _headers(self, headers_json: str) -> list[Any]:
        """Recorded response headers, parsed once per distinct set: a provider sends the same
        few headers on every response, so most steps share one parse."""
        pairs = self._parsed_headers.get(headers_json)
        if pairs is None:
            pairs = _header_pairs(headers_json)
            if len(self._parsed_headers) < 256:
                self._parsed_headers[headers_json] = pairs
        return list(pairs)  # the seam's library may keep the list: each response its own

    def _prefetch(self, pos: int) -> None:
        """Read the stored bodies of the next exchanges in one query, once per window."""
        if pos < self._prefetched:
            return
        end = min(pos + _PREFETCH, len(self._served))
        window = self._served[pos:end]
        self.tape.prefetch([h for ex in window for h in (ex.request_body, ex.response_body)])
        self._prefetched = end

    # -- divergence ------------------------------------------------------------------------

    def _fail(self, error: DivergenceError) -> NoReturn:
        self._latch(error)
        raise error

    def _latch(self, error: DivergenceError) -> None:
        """Keep the first divergence: the session raises it at exit even if it was swallowed."""
        if self.divergence is None:
            self.divergence = error

    def _diverge_damaged(self, ex: Exchange, why: str) -> NoReturn:
        self._fail(
            DivergenceError(
                f"the tape's stored bytes do not match their hash: run `seamtape verify` ({why})",
                run=self.run,
                step=ex.seq,
                method=ex.method,
                url=ex.url,
            )
        )

    def _diverge_unrecorded(self, method: str, url: str) -> None:
        self._fail(
            DivergenceError(
                f"request {len(self._served) + 1} was never recorded "
                f"(the recording made {len(self._served)} requests)",
                run=self.run,
                step=len(self._served) + 1,
                method=method,
                url=url,
            )
        )

    def _diverge_mismatch(self, method: str, url: str, body: bytes) -> None:
        pos = self._closest(method, url)
        ex = self._served[pos]
        if (ex.method, ex.url) != (method, url):
            path, old, new = "request line", f"{ex.method} {ex.url}", f"{method} {url}"
            reason = "the request line differs from the recording"
        else:
            try:
                recorded = self.tape.blob(ex.request_body)
            except DamagedTapeError as exc:
                self._diverge_damaged(ex, exc.reason)
            path, old, new = explain(recorded, body)
            reason = "the request body differs from the recording"
            if not path:
                reason = "the request is recorded, but not here: out of recorded order"
        self._fail(
            DivergenceError(
                reason,
                run=self.run,
                step=ex.seq,
                method=method,
                url=url,
                path=path,
                recorded=old,
                new=new,
            )
        )

    def _closest(self, method: str, url: str) -> int:
        """The recorded request to explain a mismatch against: the expected one, or one in
        its concurrent batch with the same method and URL."""
        expected = self._served[self._next]
        for pos in range(self._next, len(self._served)):
            ex = self._served[pos]
            if ex.batch != expected.batch:
                break
            if not self._consumed[pos] and (ex.method, ex.url) == (method, url):
                return pos
        return self._next

    def leftovers(self) -> DivergenceError | None:
        """A divergence describing what the run recorded but the replay never asked for."""
        unused = [ex for ex, done in zip(self._served, self._consumed, strict=True) if not done]
        if unused and not self.live:
            first = unused[0]
            return DivergenceError(
                f"{len(unused)} recorded request(s) were never made; the first is step "
                f"{first.seq} (pass partial=True to allow a partial replay)",
                run=self.run,
                step=first.seq,
                method=first.method,
                url=first.url,
            )
        remaining = self.nondet._draws.remaining  # type: ignore[attr-defined]
        if remaining and not self.live:
            return DivergenceError(
                f"{remaining} recorded draw(s) were never made "
                "(pass partial=True to allow a partial replay)",
                run=self.run,
            )
        return None

    # -- recording -------------------------------------------------------------------------

    def _ticket(self, method: str, url: str, headers: HeaderSource, body: bytes) -> Ticket:
        self._seq += 1
        if self._in_flight == 0:
            self._batch = self._seq
        self._in_flight += 1
        ticket = Ticket(self, self._seq, self._batch, method, url, headers, body)
        self._open.add(ticket)
        return ticket

    def _finish(self, ticket: Ticket) -> None:
        request, response = ticket.body, ticket.parts
        if self._redaction is not None:
            request, response = self._redaction.apply(request), self._redacted_parts(ticket)
        else:
            self._warn_secrets(ticket, request, response)
        ended = time.time()
        with self._lock:
            self._in_flight -= 1
            self._open.discard(ticket)
            if not ticket.substituted:  # a fork's substituted answer never went out
                self.live_exchanges += 1
            draws = self._take_draws()
        self.tape.add_exchange(*self._build(ticket, ended, draws, request, response))

    def _redacted_parts(self, ticket: Ticket) -> list[bytes]:
        """The response's parts with secrets redacted; the chunks as they came (no copy) when
        nothing in them is a secret the rules would touch."""
        assert self._redaction is not None
        parts = ticket.parts
        rules = self._redaction
        if not rules.patterns and not rules.json_paths and _find_secret_in(parts) is None:
            return parts
        whole = b"".join(parts)
        redacted = rules.apply(whole)
        if redacted is whole:
            return parts
        ticket.timings = None  # the recorded chunk sizes no longer add up: served whole
        return [redacted]

    def _warn_secrets(self, ticket: Ticket, request: bytes, response: list[bytes]) -> None:
        for side, parts in (("request", [request]), ("response", response)):
            label = _find_secret_in(parts)
            if label:
                warnings.warn(
                    SecretWarning(
                        f"run {self.run} step {ticket.seq}: the {side} body contains what "
                        f"looks like {label}; redaction is off, so it was written to the tape"
                    ),
                    stacklevel=4,
                )

    def _build(
        self,
        ticket: Ticket,
        ended: float,
        draws: list[Draw],
        request: bytes,
        response: list[bytes],
    ) -> Record:
        """The exchange to store: ``request`` and ``response`` are the bodies as redacted."""
        request_hash = blob_hash(request)
        # A streamed body stays in the chunks it came in (the agent holds them too): hashed and
        # compressed chunk by chunk, it is never copied whole in memory, unless a hook edits it.
        parts = response
        response_body: bytes | list[bytes] = parts if len(parts) > 1 else b"".join(parts)
        response_headers = _text_pairs(ticket.response_headers)
        hook = self._matching.before_record_response
        if hook is not None and ticket.status:
            response_body = b"".join(parts)
            changed = hook(TapeResponse(ticket.status, response_headers, response_body))
            if changed.body != response_body:
                ticket.timings = None  # the stored body is served whole
            ticket.status, response_body = changed.status, changed.body
            response_headers = list(changed.headers)
        response_hash = (
            chunks_hash(response_body)
            if isinstance(response_body, list)
            else blob_hash(response_body)
        )
        response_headers_json = json.dumps(redact_headers(response_headers))
        error_json = None if ticket.error is None else json.dumps(ticket.error)
        exchange = Exchange(
            run=self.run,
            seq=ticket.seq,
            batch=ticket.batch,
            method=ticket.method,
            url=ticket.url,
            request_headers_json=json.dumps(redact_headers(_text_pairs(ticket._request_headers()))),
            request_body=request_hash,
            status=ticket.status,
            response_headers_json=response_headers_json,
            http_version=ticket.http_version,
            reason=ticket.reason,
            response_body=response_hash,
            chunks_json=None if ticket.timings is None else json.dumps(ticket.timings),
            error_json=error_json,
            started=ticket.started,
            ended=ended,
        )
        digest = exchange_hash(
            ticket.method,
            ticket.url,
            request_hash,
            ticket.status,
            response_headers_json,
            response_hash,
            error_json,
        )
        with self._lock:
            self._digest.add_exchange(ticket.seq, digest)
        return exchange, request, response_body, draws

    def _record_draw(self, kind: str, value: Any) -> None:
        with self._lock:
            self._draw_seq += 1
            self._pending_draws.append(Draw(self._draw_seq, kind, value, self._seq))
            self._digest.add_draw(kind, value)

    def _serve_draw(self, kind: str, value: Any) -> None:
        with self._lock:
            self._draw_seq += 1
            if self._copy_served:
                self._pending_draws.append(Draw(self._draw_seq, kind, value, self._seq))
            self._digest.add_draw(kind, value)

    def _take_draws(self) -> list[Draw]:
        draws, self._pending_draws = self._pending_draws, []
        return draws

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Commit streams left open and draws not yet written."""
        for ticket in list(self._open):
            ticket.finish()
        with self._lock:
            self.tape.add_draws(self.run, self._take_draws())

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()


class _ServedUntilMismatch:
    """An extending cursor's draws: recorded ones while the agent asks for the kinds the tape
    holds, live ones from the first that differs or once the cursor stops serving."""

    def __init__(self, served: ServedDraws, live: LiveDraws) -> None:
        self._served, self._live = served, live
        self.stopped = False

    @property
    def remaining(self) -> int:
        return 0 if self.stopped else self._served.remaining

    def draw(self, kind: str, live: Callable[[], Any]) -> tuple[Any, bool]:
        if not self.stopped:
            try:
                return self._served.draw(kind, live)
            except DivergenceError:
                self.stopped = True
        return self._live.draw(kind, live)


class Ticket:
    """A live request being recorded: its response is filled in as it arrives."""

    def __init__(
        self,
        cursor: Cursor,
        seq: int,
        batch: int,
        method: str,
        url: str,
        headers: HeaderSource,
        body: bytes,
    ) -> None:
        self.cursor = cursor
        self.seq = seq
        self.batch = batch
        self.method = method
        self.url = url
        self._request_headers = headers
        self.body = body
        self.status = 0
        self.response_headers: list[tuple[str | bytes, str | bytes]] = []
        self.http_version = ""
        self.reason = ""
        self.parts: list[bytes] = []
        self.timings: list[tuple[int, float]] | None = None
        self.error: dict[str, str] | None = None
        self.started = time.time()
        self._t0 = time.perf_counter()
        self._done = False
        self.substituted = False

    def respond(
        self,
        status: int,
        headers: list[tuple[str | bytes, str | bytes]],
        http_version: str,
        reason: str,
    ) -> None:
        self.status, self.response_headers = status, headers
        self.http_version, self.reason = http_version, reason
        self.timings = []

    def chunk(self, data: bytes) -> None:
        if data:
            self.parts.append(data)
            assert self.timings is not None
            self.timings.append((len(data), round((time.perf_counter() - self._t0) * 1000, 3)))

    def play(self, status: int, headers: list[tuple[str, str]], chunks: list[bytes]) -> Playback:
        """Answer without going live (a fork's substituted step), recording the answer."""
        self.substituted = True
        self.respond(status, list(headers), "HTTP/1.1", "")
        for chunk in chunks:
            self.chunk(chunk)
        self.finish()
        return Playback(
            self.seq, status, [list(h) for h in headers], "HTTP/1.1", "", list(chunks), None
        )

    def fail(self, exc: BaseException) -> None:
        self.error = {"type": type(exc).__name__, "message": str(exc)}

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.cursor._finish(self)


def _path_of(url: str) -> str:
    """A URL without its scheme and host: how an extra tape's exchanges are matched."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+|\*)\]|\[\"([^\"]+)\"\]")


def _without(doc: Any, path: str) -> Any:
    """``doc`` with the value(s) at a JSON path (``$.a.b``, ``$.a[0]``, ``$.a[*].b``) left out."""
    steps = [m.group(1) or m.group(3) or m.group(2) for m in _STEP.finditer(path.lstrip("$"))]
    return _drop(doc, steps) if steps else doc


def _drop(doc: Any, steps: list[str]) -> Any:
    head, rest = steps[0], steps[1:]
    if isinstance(doc, dict) and head in doc:
        if not rest:
            return {k: v for k, v in doc.items() if k != head}
        return {**doc, head: _drop(doc[head], rest)}
    if isinstance(doc, list) and (head == "*" or head.isdigit()):
        picked = range(len(doc)) if head == "*" else [int(head)]
        if not rest:
            return [v for i, v in enumerate(doc) if i not in picked]
        return [_drop(v, rest) if i in picked else v for i, v in enumerate(doc)]
    return doc


def _find_secret_in(parts: list[bytes]) -> str | None:
    """``find_secret`` over a body in parts, including what straddles two of them."""
    previous = b""
    for part in parts:
        label = find_secret(part) or (previous and find_secret(previous[-256:] + part[:256]))
        if label:
            return label
        previous = part
    return None


def _split(body: bytes, chunks_json: str | None) -> list[bytes]:
    """The body cut where its recorded chunks arrived (one part when it came whole)."""
    if chunks_json is None or chunks_json.count("[") <= 2:
        return [body] if body else []
    parts, at = [], 0
    for size, _ in json.loads(chunks_json):
        parts.append(body[at : at + size])
        at += size
    if at < len(body):
        parts.append(body[at:])
    return parts


def _header_pairs(headers_json: str) -> list[Any]:
    pairs: list[Any] = json.loads(headers_json)
    if "\\u" not in headers_json:  # plain ASCII: the HTTP libraries take [name, value] as is
        return pairs
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


def _text_pairs(pairs: Iterable[tuple[str | bytes, str | bytes]]) -> list[tuple[str, str]]:
    """Header pairs as text; latin-1 maps every byte to one character and back, losslessly."""
    return [(_text(k), _text(v)) for k, v in pairs]


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
