"""The botocore seam: a ``before-send`` handler that tees every operation through the cursor.

botocore emits ``before-send`` with the signed request just before its HTTP session would
send it, and sends nothing itself when a handler returns a response. Recording, the handler
sends the request through the client's own HTTP session and notes the body on a ``Ticket`` as
botocore reads it; replaying, it answers from the tape and has no HTTP session at all. Either
way botocore's retry handler stays in charge (each attempt is its own exchange) and its own
parsers, the event-stream parser included, read the response.

botocore is imported only when a client is attached, never when seamtape is imported.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from seamtape._cursor import Cursor, Playback, Ticket

from .._errors import SeamtapeError
from ._httpx import Redirect

__all__ = ["BotocoreSeam"]

_EVENT = "before-send"
_READ_CHUNK = 2**16  # urllib3's default for stream()

# botocore calls every before-send handler; two seams on one client would record twice.
_attached: weakref.WeakKeyDictionary[Any, BotocoreSeam] = weakref.WeakKeyDictionary()


class BotocoreSeam:
    """Answers a botocore client's requests through ``cursor``.

    ``send`` carries live requests (the client's ``http_session.send``); it is None under
    replay, so a request the tape cannot answer is a divergence, never a network call.
    """

    def __init__(
        self, cursor: Cursor, send: Callable[[Any], Any] | None, redirect: Redirect = None
    ) -> None:
        self.cursor, self.send, self.redirect = cursor, send, redirect
        self._events: Any = None
        self._client: weakref.ref[Any] | None = None
        self._unique_id = f"seamtape-botocore-{id(self):x}"

    def attach(self, client: Any) -> bool:
        """Register on ``client``'s events: every operation's ``before-send``.

        False when the client already tees into this cursor (nothing to do).
        """
        current = _attached.get(client)
        if current is not None:
            if current.cursor is self.cursor:
                return False
            raise SeamtapeError(
                "this botocore client is already attached to another open session; "
                "a client records into one session at a time"
            )
        self._client = weakref.ref(client)
        self._events = client.meta.events
        self._events.register(_EVENT, self.handle, unique_id=self._unique_id)
        _attached[client] = self
        return True

    def detach(self) -> None:
        """Unregister; the client then sends as it did before it was attached."""
        if self._events is not None:
            self._events.unregister(_EVENT, unique_id=self._unique_id)
            self._events = None
            client = self._client() if self._client is not None else None
            if client is not None and _attached.get(client) is self:
                del _attached[client]

    def handle(self, request: Any, **kwargs: Any) -> Any:
        """The ``before-send`` handler: an ``AWSResponse`` from the tape or from the network."""
        fate = self.cursor.begin(
            request.method, request.url, lambda: list(request.headers.items()), _body(request)
        )
        if type(fate) is Playback:
            return _play(fate, request)
        assert isinstance(fate, Ticket) and self.send is not None
        _redirect(request, self.redirect)
        try:
            response = self.send(request)
        except Exception as exc:  # botocore's retry handler decides what happens next
            fate.fail(exc)
            fate.finish()
            raise
        raw = response.raw
        pairs = raw.headers.items() if hasattr(raw, "headers") else response.headers.items()
        fate.respond(
            response.status_code,
            list(pairs),
            getattr(raw, "version_string", "HTTP/1.1"),
            getattr(raw, "reason", None) or "",
        )
        if response._content is not None:  # a non-streaming operation: the session read it all
            fate.chunk(response._content)
            fate.finish()
        else:
            response.raw = _TeeRaw(raw, fate)
        return response


def _body(request: Any) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    # A file-like body (a streaming upload): read it, then rewind so the live send has it all.
    start = body.tell()
    data = body.read()
    body.seek(start)
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _redirect(request: Any, redirect: Redirect) -> None:
    """A fork's live request goes to the fork's upstream.

    The SigV4 signature covers the recorded host; the simulator does not check it, AWS would.
    """
    if redirect is None:
        return
    recorded, live = redirect
    if recorded and live and request.url.startswith(recorded.rstrip("/")):
        request.url = live.rstrip("/") + request.url[len(recorded.rstrip("/")) :]


class _Readable:
    """The file-like reading surface botocore uses on urllib3's response, over ``read``."""

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        raise NotImplementedError

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def readlines(self) -> list[bytes]:
        return self.read().splitlines(keepends=True)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readlines())


class _TeeRaw(_Readable):
    """The live urllib3 response; each read is noted on the ticket as botocore makes it.

    botocore reads with ``decode_content=False``, so the tape holds the bytes as they came off
    the connection. Anything else is passed through to the urllib3 response.
    """

    def __init__(self, inner: Any, ticket: Ticket) -> None:
        self._inner, self._ticket = inner, ticket

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _fail(self, exc: BaseException) -> None:
        self._ticket.fail(exc)
        self._ticket.finish()

    def stream(self, amt: int | None = _READ_CHUNK, decode_content: bool | None = None) -> Any:
        try:
            for chunk in self._inner.stream(amt, decode_content=decode_content):
                self._ticket.chunk(chunk)
                yield chunk
        except Exception as exc:
            self._fail(exc)
            raise
        self._ticket.finish()

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        try:
            data: bytes = self._inner.read(amt, *args, **kwargs)
        except Exception as exc:
            self._fail(exc)
            raise
        self._ticket.chunk(data)
        if amt is None or not data:  # read to the end
            self._ticket.finish()
        return data

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._ticket.finish()


class _PlaybackRaw(_Readable):
    """A recorded body with the reading surface botocore uses on urllib3's response.

    ``stream()`` yields the body in the chunks it arrived in; the recorded error, if any, is
    raised after the last of them, where the live stream broke.
    """

    def __init__(self, playback: Playback) -> None:
        self._parts = list(reversed(playback.parts))
        self._error = playback.error
        self._position = 0
        self.closed = False

    def _next_part(self) -> bytes | None:
        if self._parts:
            return self._parts.pop()
        if self._error is not None:
            error, self._error = self._error, None
            raise _error(error)
        return None

    def stream(self, amt: int | None = _READ_CHUNK, decode_content: bool | None = None) -> Any:
        while (part := self._next_part()) is not None:
            self._position += len(part)
            yield part

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        out = bytearray()
        while amt is None or len(out) < amt:
            part = self._next_part()
            if part is None:
                break
            if amt is not None and len(out) + len(part) > amt:
                keep = amt - len(out)
                part, rest = part[:keep], part[keep:]
                self._parts.append(rest)
            out += part
        self._position += len(out)
        return bytes(out)

    def tell(self) -> int:
        return self._position

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _play(playback: Playback, request: Any) -> Any:
    """The recorded response as botocore's own ``AWSResponse``, or the recorded send error."""
    # Lazy: botocore (and its urllib3) come with the sdks extra; only a botocore client needs them.
    from botocore.awsrequest import AWSResponse  # noqa: PLC0415

    try:
        from urllib3 import HTTPHeaderDict  # noqa: PLC0415
    except ImportError:  # urllib3 1.26, which botocore still allows
        from urllib3._collections import HTTPHeaderDict  # noqa: PLC0415

    if playback.status == 0:  # the attempt failed before any response arrived
        raise _error(playback.error or {})
    # urllib3's header dict, as a live response has: duplicate names join as botocore sees them.
    headers = HTTPHeaderDict()
    for name, value in playback.headers:
        headers.add(_text(name), _text(value))
    raw = _PlaybackRaw(playback)
    response = AWSResponse(request.url, playback.status, headers, raw)
    if not request.stream_output and playback.error is None:
        response._content = raw.read()  # a live session reads a non-streaming body whole, too
    return response


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _error(error: dict[str, str]) -> Exception:
    """The recorded exception's own class, found by name among botocore's and urllib3's
    exceptions (never code from the tape), carrying the recorded message."""
    name, message = error.get("type", "HTTPClientError"), error.get("message", "")
    botocore_cls, urllib3_cls = _exception_classes(name)
    if botocore_cls is not None:
        # botocore's exceptions format a message from keyword arguments the tape does not
        # hold; the recorded message is that formatted text already.
        exc: Exception = botocore_cls.__new__(botocore_cls)  # type: ignore[call-overload]
        Exception.__init__(exc, message)
        exc.kwargs = {}  # type: ignore[attr-defined]
        return exc
    if urllib3_cls is not None:
        try:
            made: Exception = urllib3_cls(message)
            return made
        except TypeError:
            pass
    import urllib3.exceptions  # noqa: PLC0415  (botocore's, from the sdks extra)

    return urllib3.exceptions.ProtocolError(f"{name}: {message}")


@functools.cache
def _exception_classes(name: str) -> tuple[type | None, type | None]:
    # Lazy: botocore (and its urllib3) come with the sdks extra.
    import botocore.exceptions  # noqa: PLC0415
    import urllib3.exceptions  # noqa: PLC0415

    found = getattr(botocore.exceptions, name, None)
    if isinstance(found, type) and issubclass(found, botocore.exceptions.BotoCoreError):
        return found, None
    found = getattr(urllib3.exceptions, name, None)
    if isinstance(found, type) and issubclass(found, urllib3.exceptions.HTTPError):
        return None, found
    return None, None
