"""A run's exchanges read through the wire codecs: the one view the engine and lenses share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import wire
from ._errors import CodecError

if TYPE_CHECKING:
    from .tape import Tape
    from .wire import Step

__all__ = ["steps_of"]


def steps_of(tape: Tape, run_id: str) -> list[Step | None]:
    """Each exchange of a run decoded by its wire codec (None where no codec applies)."""
    out: list[Step | None] = []
    exchanges = tape.exchanges(run_id)
    bodies = tape.blobs(h for ex in exchanges for h in (ex.request_body, ex.response_body))
    for ex in exchanges:
        try:
            out.append(
                wire.decode(
                    ex.method,
                    ex.url,
                    ex.request_headers,
                    bodies[ex.request_body],
                    ex.status,
                    ex.response_headers,
                    bodies[ex.response_body],
                )
            )
        except CodecError:
            out.append(None)
    return out
