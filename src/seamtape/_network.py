"""Blocking real sockets while a tape replays, so that nothing slips past the seam.

A replay seam has no inner transport, so a request made through a session's clients can
never reach the network. A client built around the session (a framework's own, or one
made before the session opened) can: this module makes that a loud failure instead of a
silent live call. Only ``connect`` and ``connect_ex`` of internet sockets are patched;
listening servers on 127.0.0.1 (a simulator, a test's origin) keep working, and Unix
sockets are not the network.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ._errors import NetworkBlockedError

__all__ = ["NetworkBlockedError", "blocking", "host_allowed"]

_lock = threading.Lock()
_depth = 0
_originals: tuple[Callable[..., Any], Callable[..., Any]] | None = None
_LOOPBACK = frozenset({"127.0.0.1", "::1"})


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether ``host`` (an IP address as given to ``connect``) matches an allowed pattern.

    Each pattern is a regular expression matched against the whole address (so
    ``127.0.0.1`` does not also allow ``127.0.0.10``); ``localhost`` stands for the
    loopback addresses, since ``connect`` only ever sees addresses.
    """
    for pattern in allowed:
        if pattern == "localhost" and host in _LOOPBACK:
            return True
        if re.fullmatch(pattern, host):
            return True
    return False


@contextlib.contextmanager
def blocking(allowed_hosts: Sequence[str] = ()) -> Iterator[None]:
    """Inside the block, connecting an internet socket to a host not in ``allowed_hosts``
    raises ``NetworkBlockedError``."""
    global _depth, _originals
    allowed = tuple(allowed_hosts)
    with _lock:
        if _depth == 0:
            _originals = (socket.socket.connect, socket.socket.connect_ex)
        saved = (socket.socket.connect, socket.socket.connect_ex)
        assert _originals is not None
        socket.socket.connect = _guard(_originals[0], allowed)  # type: ignore[method-assign]
        socket.socket.connect_ex = _guard(_originals[1], allowed)  # type: ignore[method-assign]
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            socket.socket.connect, socket.socket.connect_ex = saved  # type: ignore[method-assign]
            _depth -= 1


def _guard(original: Callable[..., Any], allowed: tuple[str, ...]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any, *args: Any, **kwargs: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host, port = str(address[0]), address[1]
            if not host_allowed(host, allowed):
                raise NetworkBlockedError(
                    f"a connection to {host}:{port} was blocked while replaying: something "
                    "made a request outside the tape's seam. Build the agent's clients from "
                    "the session (session.httpx2_client()) or record with intercept=True; "
                    "allow the host with --allowed-hosts if it is meant to be reached"
                )
        return original(self, address, *args, **kwargs)

    return connect
