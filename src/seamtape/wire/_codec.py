"""What every provider codec provides, and the response it builds."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._step import Step

Headers = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    """An HTTP response ready to send: for a stream, ``chunks`` are its natural frames."""

    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(frozen=True, slots=True)
class Codec:
    """One wire format. The functions receive request bodies already parsed as a JSON object.

    ``decode_response`` fills the response fields of a step its ``decode_request`` made;
    ``framed`` says whether the body is a stream (SSE or event-stream) rather than one JSON
    document. ``decode_error`` returns (provider error type, message) for a non-2xx body.
    """

    api: str
    provider: str
    path: re.Pattern[str]  # searched in the URL path; detection needs nothing else
    is_stream: Callable[[str, dict[str, Any]], bool]
    decode_request: Callable[[str, dict[str, Any]], Step]
    decode_response: Callable[[Step, str, Headers, bytes, bool], None]
    decode_error: Callable[[Headers, bytes], tuple[str, str]]
    encode_response: Callable[[Step, bool], EncodedResponse]
    encode_error: Callable[[int, str], EncodedResponse]


def header(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def json_response(body: bytes, *, status: int = 200, extra: Headers = ()) -> EncodedResponse:
    """A JSON response of one chunk."""
    return EncodedResponse(status, [("content-type", "application/json"), *extra], [body])
