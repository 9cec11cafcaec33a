"""Route every httpx/httpx2 client made inside a session block through the session in force.

The constructors are patched while at least one intercepting block is open, and restored
exactly when the last one closes. A client built inside a block gets a *following*
transport around its own: at each request it asks which session is in force and goes
through that one, so a client that outlives its block (a framework's process-wide cache, a
tracing exporter) never acts for a closed session:

1. the innermost intercepting session of the sending thread or task (a contextvar);
2. else, for a sender with no session of its own (a plain worker thread), the session the
   client was built in, if it is still open; else the latest intercepting session opened
   in the process;
3. else (no intercepting session is open) the client's own transport, untouched: the
   client behaves exactly as it would have without seamtape.

Which clients are wrapped is read from the contextvar too, so a block in one thread or task
never captures a client another one builds. Requests to a tracing sink (``TELEMETRY``) are
never recorded as model calls: a recording session sends them on untouched, a replay answers
them itself (204, nothing sent).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from ._httpx import LIBRARIES

__all__ = ["TELEMETRY", "follow", "in_force", "intercepting"]

# (library, is_async, inner transport) -> the session's seam transport around it
Wrap = Callable[[str, bool, Any], Any]

# URL paths of tracing sinks that frameworks post to on their own: the OpenAI Agents SDK's
# trace exporter. Not model calls: never recorded, never sent while a replay is in force.
TELEMETRY = ("/v1/traces/ingest",)

# The open intercepting blocks of this context, innermost last.
_active: contextvars.ContextVar[tuple[Wrap, ...]] = contextvars.ContextVar(
    "seamtape_wraps", default=()
)
_lock = threading.Lock()
_users = 0
_originals: list[tuple[type, Callable[..., None]]] = []
_open: list[Wrap] = []  # every open intercepting block in the process, oldest first


@contextlib.contextmanager
def intercepting(wrap: Wrap, libraries: tuple[str, ...]) -> Iterator[None]:
    """While open, clients of ``libraries`` built in this context are wrapped by ``wrap``."""
    _install(libraries)
    with _lock:
        _open.append(wrap)
    _active.set((*_active.get(), wrap))
    try:
        yield
    finally:
        # Not a token reset: blocks may close in any order, and each removes only itself.
        _active.set(tuple(w for w in _active.get() if w is not wrap))
        with _lock:
            _open.remove(wrap)
        _uninstall()


def in_force(creator: Wrap | None = None) -> Wrap | None:
    """The session a request sent now goes through (see the module docstring), or None."""
    with _lock:
        # A context copied while a block was open can outlive it (a kept event loop's, a task's).
        mine = [w for w in _active.get() if w in _open]
        if mine:
            return mine[-1]
        if creator is not None and creator in _open:
            return creator
        return _open[-1] if _open else None


def follow(client: Any) -> Any:
    """Make a client built outside any block follow the session in force; returns it.

    The one-line hook for a client intercept cannot reach because it exists before any
    block opens (built at import time, a module-level singleton): an ``httpx``/``httpx2``
    client, or an SDK client that holds one as ``_client`` (``openai``, ``anthropic``).
    Outside any intercepting session it behaves exactly as before.
    """
    http: Any = client if hasattr(client, "_transport") else getattr(client, "_client", None)
    found = _library_of(http)
    if found is None:
        raise TypeError(
            f"seamtape.follow() takes an httpx or httpx2 client, or an SDK client holding one "
            f"as ._client; got {type(client).__name__}"
        )
    kind = _following(*found)
    if isinstance(http._transport, kind) or getattr(http._transport, "cursor", None) is not None:
        return client  # already following, or already a session's own client
    http._transport = kind(http._transport, None)
    http._mounts = {
        pattern: None if mounted is None else kind(mounted, None)
        for pattern, mounted in http._mounts.items()
    }
    return client


def _library_of(http: Any) -> tuple[str, bool] | None:
    """(library, is_async) of an httpx/httpx2 client (subclasses too), or None."""
    for name in LIBRARIES:
        lib = sys.modules.get(name)  # a client of a library never imported cannot exist
        if lib is None:
            continue
        if isinstance(http, lib.AsyncClient):
            return name, True
        if isinstance(http, lib.Client):
            return name, False
    return None


def _install(libraries: tuple[str, ...]) -> None:
    global _users
    with _lock:
        _users += 1
        if _users > 1:
            return
        for name in libraries:
            try:
                lib = importlib.import_module(name)
            except ImportError:
                continue
            for cls, is_async in ((lib.Client, False), (lib.AsyncClient, True)):
                _originals.append((cls, cls.__init__))
                cls.__init__ = _patched(cls.__init__, name, is_async)


def _uninstall() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users:
            return
        while _originals:
            cls, init = _originals.pop()
            cls.__init__ = init  # type: ignore[misc]


def _patched(init: Callable[..., None], library: str, is_async: bool) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        with _lock:
            wraps = [w for w in _active.get() if w in _open]
        if not wraps or getattr(self._transport, "cursor", None) is not None:
            return
        follow, creator = _following(library, is_async), wraps[-1]
        self._transport = follow(self._transport, creator)
        self._mounts = {
            pattern: None if mounted is None else follow(mounted, creator)
            for pattern, mounted in self._mounts.items()
        }

    __init__.__wrapped__ = init  # type: ignore[attr-defined]
    return __init__


def _is_telemetry(url: Any) -> bool:
    return urlsplit(str(url)).path.rstrip("/") in TELEMETRY


@functools.cache
def _following(library: str, is_async: bool) -> type:
    """The following transport class for ``library``, sync or async."""
    lib = importlib.import_module(library)

    def seam_for(transport: Any, request: Any) -> Any:
        """The transport this request goes through now: a session's seam, or the client's own."""
        wrap = in_force(transport.creator)
        if wrap is None:
            return transport.inner
        seam = wrap(library, is_async, transport.inner)
        if _is_telemetry(request.url):
            return transport.inner if seam.cursor.live else _Unsent(lib)
        return seam

    class Following(lib.BaseTransport):  # type: ignore[name-defined,misc]
        """A client's own transport, sent through whichever session is in force."""

        def __init__(self, inner: Any, creator: Wrap | None) -> None:
            self.inner, self.creator = inner, creator

        def handle_request(self, request: Any) -> Any:
            return seam_for(self, request).handle_request(request)

        def close(self) -> None:
            self.inner.close()

    class AsyncFollowing(lib.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self, inner: Any, creator: Wrap | None) -> None:
            self.inner, self.creator = inner, creator

        async def handle_async_request(self, request: Any) -> Any:
            return await seam_for(self, request).handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    return AsyncFollowing if is_async else Following


class _Unsent:
    """Answers a tracing sink's request under replay: accepted, nothing sent, nothing kept."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib

    def handle_request(self, request: Any) -> Any:
        return self._lib.Response(204, request=request)

    async def handle_async_request(self, request: Any) -> Any:
        return self._lib.Response(204, request=request)
