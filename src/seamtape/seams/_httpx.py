"""The httpx seam, for both ``httpx`` and ``httpx2`` (Pydantic's fork with the same transport API).

One implementation serves both libraries: the classes are built once per library module,
subclassing that library's own transport and stream bases. A transport reads the request,
asks the cursor, and either plays back a recorded response or forwards the request to its
inner transport and tees the response stream into the tape as it arrives.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from seamtape._cursor import Cursor, Playback, Ticket

__all__ = ["LIBRARIES", "Redirect", "transport_class"]

# (the upstream a run was recorded against, the upstream its live requests go to now)
Redirect = tuple[str, str] | None

LIBRARIES = ("httpx", "httpx2")


def transport_class(library: str, *, is_async: bool) -> type:
    """The seam transport class for ``library`` ("httpx" or "httpx2"), sync or async."""
    sync_cls, async_cls = _classes(library)
    return async_cls if is_async else sync_cls


def default_inner(library: str, *, is_async: bool) -> Any:
    """The library's own HTTP transport, sharing one TLS context across sessions."""
    lib = importlib.import_module(library)
    verify = _tls_context(library)
    return lib.AsyncHTTPTransport(verify=verify) if is_async else lib.HTTPTransport(verify=verify)


@functools.cache
def _tls_context(library: str) -> Any:
    # Building a TLS context loads the CA bundle (tens of ms); a fork or blame trial opens a
    # session each, so they share one, as the library's own default clients would.
    return importlib.import_module(library).create_ssl_context()


@functools.cache
def _classes(library: str) -> tuple[type, type]:
    if library not in LIBRARIES:
        raise ValueError(f"unknown HTTP library {library!r}; expected one of {LIBRARIES}")
    lib = importlib.import_module(library)

    class PlaybackStream(lib.SyncByteStream, lib.AsyncByteStream):  # type: ignore[name-defined]
        """A recorded body, in the chunks it arrived in, then the recorded error if any."""

        def __init__(self, playback: Playback) -> None:
            self._playback = playback

        def __iter__(self) -> Iterator[bytes]:
            yield from self._playback.parts
            if self._playback.error is not None:
                raise _transport_error(lib, self._playback.error)

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for part in self._playback.parts:
                yield part
            if self._playback.error is not None:
                raise _transport_error(lib, self._playback.error)

    def play(playback: Playback, request: Any) -> Any:
        if playback.status == 0:  # the attempt failed before any response arrived
            raise _transport_error(lib, playback.error or {}, request)
        response = lib.Response(
            playback.status,
            headers=playback.headers,
            stream=PlaybackStream(playback),
            extensions={
                "http_version": playback.http_version.encode(),
                "reason_phrase": playback.reason.encode(),
            },
            request=request,
        )
        parts = playback.parts
        if (
            len(parts) <= 1
            and playback.error is None
            and "content-encoding" not in response.headers
        ):
            # A body that arrived whole and unencoded is handed over already read, as a
            # mock or ASGI transport does; reading it again would only re-run the decoders.
            response._content = parts[0] if parts else b""
        return response

    def respond(ticket: Ticket, response: Any) -> bool:
        """Note the response line on the ticket; True when its body is already complete."""
        ext = response.extensions
        ticket.respond(
            response.status_code,
            response.headers.raw,
            ext.get("http_version", b"HTTP/1.1").decode(),
            ext.get("reason_phrase", b"").decode(),
        )
        if hasattr(response, "_content"):  # read before it reached us (mock and ASGI transports)
            ticket.chunk(response.content)
            ticket.finish()
            return True
        return False

    class TeeStream(lib.SyncByteStream):  # type: ignore[name-defined]
        """Passes each chunk on the moment it arrives, after noting it on the ticket."""

        def __init__(self, inner: Any, ticket: Ticket) -> None:
            self._inner, self._ticket = inner, ticket

        def __iter__(self) -> Iterator[bytes]:
            try:
                for chunk in self._inner:
                    self._ticket.chunk(chunk)
                    yield chunk
            except Exception as exc:
                self._ticket.fail(exc)
                raise

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._ticket.finish()

    class AsyncTeeStream(lib.AsyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: Any, ticket: Ticket) -> None:
            self._inner, self._ticket = inner, ticket

        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                async for chunk in self._inner:
                    self._ticket.chunk(chunk)
                    yield chunk
            except Exception as exc:
                self._ticket.fail(exc)
                raise

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._ticket.finish()

    class SeamTransport(lib.BaseTransport):  # type: ignore[name-defined]
        """Records, replays or forks through ``cursor``; ``inner`` carries live requests."""

        def __init__(self, cursor: Cursor, inner: Any = None, redirect: Redirect = None) -> None:
            self.cursor, self.inner, self.redirect = cursor, inner, redirect

        def handle_request(self, request: Any) -> Any:
            body = request.read()
            fate = self.cursor.begin(
                request.method, str(request.url), lambda: request.headers.raw, body
            )
            if type(fate) is Playback:
                return play(fate, request)
            assert isinstance(fate, Ticket)
            _redirect(lib, request, self.redirect)
            try:
                response = self.inner.handle_request(request)
            except Exception as exc:
                fate.fail(exc)
                fate.finish()
                raise
            if not respond(fate, response):
                response.stream = TeeStream(response.stream, fate)
            return response

        def close(self) -> None:
            if self.inner is not None:
                self.inner.close()

    class AsyncSeamTransport(lib.AsyncBaseTransport):  # type: ignore[name-defined]
        def __init__(self, cursor: Cursor, inner: Any = None, redirect: Redirect = None) -> None:
            self.cursor, self.inner, self.redirect = cursor, inner, redirect

        async def handle_async_request(self, request: Any) -> Any:
            body = await request.aread()
            fate = self.cursor.begin(
                request.method, str(request.url), lambda: request.headers.raw, body
            )
            if type(fate) is Playback:
                return play(fate, request)
            assert isinstance(fate, Ticket)
            _redirect(lib, request, self.redirect)
            try:
                response = await self.inner.handle_async_request(request)
            except Exception as exc:
                fate.fail(exc)
                fate.finish()
                raise
            if not respond(fate, response):
                response.stream = AsyncTeeStream(response.stream, fate)
            return response

        async def aclose(self) -> None:
            if self.inner is not None:
                await self.inner.aclose()

    SeamTransport.__qualname__ = SeamTransport.__name__ = "SeamTransport"
    SeamTransport.__module__ = AsyncSeamTransport.__module__ = f"seamtape.seams.{library}"
    return SeamTransport, AsyncSeamTransport


def _redirect(lib: ModuleType, request: Any, redirect: Redirect) -> None:
    """Send a live request that was recorded against one upstream to another instead."""
    if redirect is None:
        return
    recorded, live = redirect
    url = str(request.url)
    if recorded and live and url.startswith(recorded):
        request.url = lib.URL(live.rstrip("/") + url[len(recorded.rstrip("/")) :])
        request.headers["host"] = request.url.netloc.decode("ascii")


def _transport_error(lib: ModuleType, error: dict[str, str], request: Any = None) -> Exception:
    """The library's own exception for a recorded transport failure; never code from the tape."""
    name, message = error.get("type", "TransportError"), error.get("message", "")
    cls = getattr(lib, name, None)
    if not (isinstance(cls, type) and issubclass(cls, lib.TransportError)):
        cls, message = lib.TransportError, f"{name}: {message}"
    exc: Exception = cls(message, request=request)
    return exc
