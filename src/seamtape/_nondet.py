"""``NondetSource``: the one way an agent reads time, ids and randomness.

Recording draws real values and keeps them; replay serves them back in order, so an agent
that reads the clock or makes an id sees exactly what it saw when it was recorded.
"""

from __future__ import annotations

import random as _random
import secrets
import time as _time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol, TypeVar

from seamtape._errors import DivergenceError
from seamtape.tape import Draw

__all__ = ["LiveDraws", "NondetSource", "ServedDraws"]

T = TypeVar("T")


class Draws(Protocol):
    """Where a ``NondetSource`` gets its values: drawn live, or served from a tape."""

    def draw(self, kind: str, live: Callable[[], Any]) -> tuple[Any, bool]:
        """Return the JSON value for this draw, and whether it was drawn live."""
        ...


class LiveDraws:
    """Draws real values and hands each one to ``sink`` (the cursor, which stores it)."""

    def __init__(self, sink: Callable[[str, Any], None]) -> None:
        self._sink = sink

    def draw(self, kind: str, live: Callable[[], Any]) -> tuple[Any, bool]:
        value = live()
        self._sink(kind, value)
        return value, True


class ServedDraws:
    """Serves recorded draws in order; past their end, hands over to ``then`` or diverges."""

    def __init__(
        self,
        draws: Sequence[Draw],
        *,
        run: str,
        on_served: Callable[[str, Any], None],
        on_divergence: Callable[[DivergenceError], None] = lambda error: None,
        then: LiveDraws | None = None,
    ) -> None:
        self._draws = draws
        self._on_divergence = on_divergence
        self._next = 0
        self._run = run
        self._on_served = on_served
        self._then = then

    @property
    def remaining(self) -> int:
        return len(self._draws) - self._next

    def draw(self, kind: str, live: Callable[[], Any]) -> tuple[Any, bool]:
        if self._next >= len(self._draws):
            if self._then is not None:
                return self._then.draw(kind, live)
            self._diverge(
                f"draw {self._next + 1}: the agent asked for {kind}(), but the recording "
                f"made only {len(self._draws)} draws"
            )
        recorded = self._draws[self._next]
        if recorded.kind != kind:
            self._diverge(
                f"draw {recorded.seq}: the agent asked for {kind}(), the tape has "
                f"{recorded.kind}() here"
            )
        self._next += 1
        self._on_served(kind, recorded.value)
        return recorded.value, False

    def _diverge(self, reason: str) -> NoReturn:
        error = DivergenceError(reason, run=self._run)
        self._on_divergence(error)
        raise error


class NondetSource:
    """Time, ids and randomness for an agent, recorded and replayed through the tape."""

    def __init__(self, draws: Draws) -> None:
        self._draws = draws

    def _value(self, kind: str, live: Callable[[], Any]) -> Any:
        return self._draws.draw(kind, live)[0]

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.fromisoformat(self._value("now", lambda: datetime.now(UTC).isoformat()))

    def time(self) -> float:
        return float(self._value("time", _time.time))

    def monotonic(self) -> float:
        return float(self._value("monotonic", _time.monotonic))

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(self._value("uuid4", lambda: uuid.uuid4().hex))

    def random(self) -> float:
        return float(self._value("random", _random.random))

    def randint(self, a: int, b: int) -> int:
        value = int(self._value("randint", lambda: _random.randint(a, b)))
        if not a <= value <= b:
            raise DivergenceError(f"randint({a}, {b}): the tape holds {value}, outside the range")
        return value

    def choice(self, seq: Sequence[T]) -> T:
        if not seq:
            raise IndexError("cannot choose from an empty sequence")
        index = int(self._value("choice", lambda: _random.randrange(len(seq))))
        if index >= len(seq):
            raise DivergenceError(
                f"choice() over {len(seq)} items: the tape chose item {index}, which is not there"
            )
        return seq[index]

    def token_hex(self, nbytes: int = 16) -> str:
        return str(self._value("token_hex", lambda: secrets.token_hex(nbytes)))

    def sleep(self, seconds: float) -> None:
        """Sleep when recording; return at once when the draw is served from a tape."""
        _, live = self._draws.draw("sleep", lambda: seconds)
        if live:
            _time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        """``sleep`` for async agents."""
        # Lazy: the record path (an httpx client, sync agents) never loads asyncio otherwise.
        import asyncio  # noqa: PLC0415

        _, live = self._draws.draw("sleep", lambda: seconds)
        await asyncio.sleep(seconds if live else 0)
