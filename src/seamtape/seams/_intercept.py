"""Route every httpx/httpx2 client made inside a session block through that session.

The constructors are patched while at least one intercepting block is open, and restored
exactly when the last one closes. Which session a new client joins is read from a
contextvar, so a block in one thread or task never captures another's clients.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["intercepting"]

# (library, is_async, inner transport) -> the session's seam transport around it
Wrap = Callable[[str, bool, Any], Any]

# The open intercepting blocks of this context, innermost last.
_active: contextvars.ContextVar[tuple[Wrap, ...]] = contextvars.ContextVar(
    "seamtape_wraps", default=()
)
_lock = threading.Lock()
_users = 0
_originals: list[tuple[type, Callable[..., None]]] = []


@contextlib.contextmanager
def intercepting(wrap: Wrap, libraries: tuple[str, ...]) -> Iterator[None]:
    """While open, clients of ``libraries`` built in this context are wrapped by ``wrap``."""
    _install(libraries)
    _active.set((*_active.get(), wrap))
    try:
        yield
    finally:
        # Not a token reset: blocks may close in any order, and each removes only itself.
        _active.set(tuple(w for w in _active.get() if w is not wrap))
        _uninstall()


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
        wraps = _active.get()
        if not wraps or getattr(self._transport, "cursor", None) is not None:
            return
        wrap = wraps[-1]
        self._transport = wrap(library, is_async, self._transport)
        self._mounts = {
            pattern: None if mounted is None else wrap(library, is_async, mounted)
            for pattern, mounted in self._mounts.items()
        }

    __init__.__wrapped__ = init  # type: ignore[attr-defined]
    return __init__
