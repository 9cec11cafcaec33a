"""Server-sent events framing: parse a whole stream body into events, build one event's bytes.

Parsing follows the WHATWG event-stream rules the SDKs implement: lines end in CRLF, LF or CR;
a blank line dispatches the event; ``:`` starts a comment; one space after the colon is
dropped; ``data`` lines join with LF. An event cut off before its blank line is not dispatched,
as in a browser, so a truncated stream simply lacks its last event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import CodecError

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event: ``event`` is the ``event:`` field or None when absent."""

    data: str
    event: str | None = None


def parse(body: bytes) -> list[Event]:
    """Every complete event in ``body``, in order. Raises CodecError on invalid UTF-8."""
    events: list[Event] = []
    name: str | None = None
    data: list[str] = []
    # split keeps the text after the last line break as a final, unterminated piece
    *lines, _unterminated = _LINE_BREAK.split(body)
    for number, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"SSE line {number} is not valid UTF-8: {exc}") from None
        if not line:
            # the spec dispatches only events that carried data; an empty name means no name
            if data:
                events.append(Event(data="\n".join(data), event=name or None))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return events


def build(data: str, event: str | None = None, *, eol: str = "\n") -> bytes:
    """The bytes of one event. ``eol`` is ``"\\n"`` or ``"\\r\\n"`` (Gemini ends lines in CRLF).

    Raises ValueError for text SSE cannot carry: a line break in the event name or a CR in the
    data (a CR would split the line on the way back).
    """
    if eol not in ("\n", "\r\n"):
        raise ValueError(f"eol must be LF or CRLF, not {eol!r}")
    if "\r" in data:
        raise ValueError("SSE data cannot carry a CR")
    lines = []
    if event:
        if "\n" in event or "\r" in event:
            raise ValueError(f"SSE event name cannot hold a line break: {event!r}")
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return (eol.join(lines) + eol + eol).encode("utf-8")
