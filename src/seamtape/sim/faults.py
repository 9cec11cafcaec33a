"""Faults the simulator injects into a response: provider errors, cut streams, slowness.

A ``Fault`` says what goes wrong with one response; a ``FaultPlan`` says which requests get
one: the next N requests (``inject``), fixed request indexes (a mapping), or a callable.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from .server import RecordedRequest

# Anthropic reports overload with its own status; the other providers use a plain 503.
_OVERLOADED_STATUS = {"anthropic": 529}


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with one response. Fields combine; the constructors cover the usual cases.

    - ``status``: answer with this provider error (built by ``seamtape.wire.encode_error``)
      instead of calling the policy; ``0`` means no error.
    - ``overload``: answer "overloaded": Anthropic's 529, a 503 for the other providers.
    - ``retry_after``: seconds sent as ``retry-after`` (and ``retry-after-ms``) with the error.
    - ``cut_after``: send this many frames of a stream (or half of a JSON body), then close
      the connection without the terminator; ``None`` means no cut.
    - ``first_byte_delay`` / ``frame_delay``: seconds before the status line / between frames.
    - ``hold_after`` + ``hold``: after that many frames, wait until the event is set (lets a
      test prove frames arrive incrementally without relying on timing).
    """

    status: int = 0
    overload: bool = False
    message: str = ""
    retry_after: float | None = None
    cut_after: int | None = None
    first_byte_delay: float = 0.0
    frame_delay: float = 0.0
    hold_after: int | None = None
    hold: threading.Event | None = None

    @classmethod
    def rate_limit(cls, retry_after: float | None = 0.0, message: str = "") -> Fault:
        """429 Too Many Requests in the provider's own shape, with ``retry-after``."""
        return cls(status=429, retry_after=retry_after, message=message or "Rate limited.")

    @classmethod
    def server_error(cls, status: int = 500, message: str = "") -> Fault:
        """A provider 5xx (500 by default)."""
        return cls(status=status, message=message or "Internal server error.")

    @classmethod
    def overloaded(cls, retry_after: float | None = 0.0, message: str = "") -> Fault:
        """Overloaded: Anthropic's 529 ``overloaded_error``; a 503 for the other providers."""
        return cls(overload=True, retry_after=retry_after, message=message or "Overloaded.")

    @classmethod
    def cut_stream(cls, after_frames: int = 1) -> Fault:
        """Close the connection after ``after_frames`` frames, with no terminator."""
        return cls(cut_after=after_frames)

    @classmethod
    def slow(cls, first_byte: float = 0.0, between_frames: float = 0.0) -> Fault:
        """Delay the first byte and/or each following frame by some seconds."""
        return cls(first_byte_delay=first_byte, frame_delay=between_frames)

    @classmethod
    def hold_stream(cls, until: threading.Event, after_frames: int = 1) -> Fault:
        """Send ``after_frames`` frames, then wait for ``until`` before sending the rest."""
        return cls(hold_after=after_frames, hold=until)

    def status_for(self, provider: str) -> int:
        """The HTTP status this fault answers with for ``provider`` (0: not an error)."""
        if self.overload:
            return _OVERLOADED_STATUS.get(provider, 503)
        return self.status


FaultRule: TypeAlias = "Callable[[RecordedRequest], Fault | None]"


class FaultPlan:
    """Decides, thread-safely, which fault (if any) each request gets.

    Precedence: a fault fixed for the request's index, then the ``inject`` queue (next N
    requests, in order), then the rule callable.
    """

    def __init__(self, faults: Mapping[int, Fault] | FaultRule | None = None) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._by_index: dict[int, Fault] = {}
        self._rule: FaultRule | None = None
        if isinstance(faults, Mapping):
            self._by_index.update(faults)
        elif faults is not None:
            self._rule = faults

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to each of the next ``times`` requests not covered by an index."""
        with self._lock:
            self._queue.extend([fault] * times)

    def at(self, index: int, fault: Fault) -> None:
        """Apply ``fault`` to the request with this 0-based index."""
        with self._lock:
            self._by_index[index] = fault

    def clear(self) -> None:
        """Forget every pending fault (the rule callable stays)."""
        with self._lock:
            self._queue.clear()
            self._by_index.clear()

    def take(self, request: RecordedRequest) -> Fault | None:
        """The fault for this request, consuming it from the plan."""
        with self._lock:
            fault = self._by_index.pop(request.index, None)
            if fault is None and self._queue:
                fault = self._queue.popleft()
            rule = self._rule
        if fault is None and rule is not None:
            fault = rule(request)
        return fault
