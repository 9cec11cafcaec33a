"""A run's exchanges read through the wire codecs: the one view the engine and lenses share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from . import wire
from ._errors import CodecError

if TYPE_CHECKING:
    from .tape import Exchange, Tape
    from .wire import Step

__all__ = ["decode_exchange", "steps_of", "steps_of_exchanges"]


def decode_exchange(ex: Exchange, request: bytes, response: bytes) -> Step:
    """One exchange decoded by its wire codec, given its bodies; ``CodecError`` if none reads it."""
    return wire.decode(
        ex.method, ex.url, ex.request_headers, request, ex.status, ex.response_headers, response
    )


def steps_of_exchanges(
    exchanges: Sequence[Exchange], bodies: Mapping[bytes, bytes]
) -> list[Step | None]:
    """Each exchange decoded (None where no codec applies), its bodies looked up in ``bodies``."""
    out: list[Step | None] = []
    for ex in exchanges:
        try:
            out.append(decode_exchange(ex, bodies[ex.request_body], bodies[ex.response_body]))
        except CodecError:
            out.append(None)
    return out


def steps_of(tape: Tape, run_id: str) -> list[Step | None]:
    """Each exchange of a run decoded by its wire codec (None where no codec applies)."""
    exchanges = tape.exchanges(run_id)
    bodies = tape.blobs(h for ex in exchanges for h in (ex.request_body, ex.response_body))
    return steps_of_exchanges(exchanges, bodies)
