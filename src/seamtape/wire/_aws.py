"""What Bedrock's InvokeModel and Converse share: the model id in the URL, the error shape,
and events framed as AWS event-stream messages."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from . import _json, eventstream
from ._codec import EncodedResponse, Headers, header, json_response
from .errors import CodecError

STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_EXCEPTIONS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def path(operations: str) -> re.Pattern[str]:
    """The path pattern for ``/model/{modelId}/{operation}``; the id may hold encoded slashes."""
    return re.compile(rf"/model/(?P<model>.+)/(?P<operation>{operations})$")


def path_match(pattern: re.Pattern[str], url: str) -> re.Match[str]:
    match = pattern.search(urlsplit(url).path)
    if match is None:
        raise CodecError(f"no /model/{{modelId}}/... in URL {url!r}")
    return match


def model_id(pattern: re.Pattern[str], url: str) -> str:
    """The model id from the URL, decoded (botocore percent-encodes ``:`` and ``/``)."""
    return unquote(path_match(pattern, url)["model"])


def decode_error(headers: Headers, body: bytes) -> tuple[str, str]:
    # x-amzn-ErrorType is "Name:namespace"; the body is {"message": ...} (or "Message")
    kind = (header(headers, "x-amzn-errortype") or "").split(":", 1)[0]
    raw = _json.load_object(body, "error body") if body.strip() else {}
    return kind or raw.get("__type", ""), raw.get("message") or raw.get("Message") or ""


def encode_error(status: int, message: str) -> EncodedResponse:
    name = _EXCEPTIONS.get(
        status, "InternalServerException" if status >= 500 else "ValidationException"
    )
    extra = [("x-amzn-ErrorType", f"{name}:{_ERROR_NAMESPACE}")]
    return json_response(_json.dump({"message": message}), status=status, extra=extra)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """One event message, with the headers Bedrock sends."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return eventstream.build(headers, _json.dump(payload))


class StreamException(Exception):
    """An exception message inside an event stream: the provider's error, not a codec failure."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event type, JSON payload) of every event; raises StreamException for an exception message."""
    out: list[tuple[str, dict[str, Any]]] = []
    for number, message in enumerate(eventstream.parse(body), start=1):
        kind = message.header(":message-type")
        if kind in ("exception", "error"):
            name = str(message.header(":exception-type") or message.header(":error-code") or "")
            raw = (
                _json.load_object(message.payload, f"event {number} payload")
                if message.payload
                else {}
            )
            text = (
                raw.get("message")
                or raw.get("Message")
                or str(message.header(":error-message") or "")
            )
            # member names are lowerCamel (throttlingException); the HTTP error names are not
            raise StreamException(name[:1].upper() + name[1:], text)
        out.append(
            (
                str(message.header(":event-type") or ""),
                _json.load_object(message.payload, f"event {number} payload"),
            )
        )
    return out
