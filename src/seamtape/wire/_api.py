"""The public entry points: detect an api, decode an exchange into a Step, encode a Step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from . import _json
from ._codec import Codec, EncodedResponse, Headers, header
from ._registry import codec, detect
from ._step import Step
from .errors import CodecError
from .prices import cost

T = TypeVar("T")

_STREAM_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream")


def _checked(api: str, part: str, action: Callable[..., T], *args: Any) -> T:
    """Run a codec function; every failure becomes a CodecError that names the api.

    Codecs index into untrusted JSON freely; a missing key or a wrong type there means a
    malformed ``part`` ("request" or "response"), reported as such rather than as a KeyError.
    """
    try:
        return action(*args)
    except CodecError as exc:
        raise CodecError(f"{api}: {exc}") from exc
    except KeyError as exc:
        raise CodecError(f"{api}: malformed {part}: missing field {exc}") from exc
    except (TypeError, AttributeError, IndexError, ValueError, ArithmeticError) as exc:
        raise CodecError(f"{api}: malformed {part}: {type(exc).__name__}: {exc}") from exc
    except RecursionError:
        raise CodecError(f"{api}: malformed {part}: nested too deeply to read") from None


def _request_body(api: str, body: bytes) -> dict[str, Any]:
    return _checked(api, "request", _json.load_object, body, "request body")


def is_stream(api: str, url: str, request_body: bytes) -> bool:
    """Whether the request asks for a streamed response."""
    found = codec(api)
    return bool(_checked(api, "request", found.is_stream, url, _request_body(api, request_body)))


def decode_request(api: str, url: str, body: bytes) -> Step:
    """The request side of a step: model, system, messages, tools, latest tool results, stream."""
    found = codec(api)
    return _checked(api, "request", found.decode_request, url, _request_body(api, body))


def _framed(response_headers: Headers, requested: bool) -> bool:
    """Whether the body is a stream: the content type says so; without one, the request does."""
    content_type = (header(response_headers, "content-type") or "").split(";")[0].strip().lower()
    if content_type:
        return content_type in _STREAM_TYPES
    return requested


def _decode_error(found: Codec, step: Step, headers: Headers, body: bytes) -> None:
    step.stop_reason = "error"
    try:
        step.error_type, step.text = found.decode_error(headers, body)
    except (CodecError, AttributeError, TypeError):
        # a proxy or gateway can answer in HTML or plain text; its words are the message
        step.error_type, step.text = "", body.decode("utf-8", "replace").strip()
    if not step.text:
        step.text = f"HTTP {step.status}"


def decode(
    method: str,
    url: str,
    request_headers: Headers,
    request_body: bytes,
    status: int,
    response_headers: Headers,
    response_body: bytes,
) -> Step:
    """The whole step of one exchange: the request side, then the response side and its cost.

    A non-2xx response becomes a step with stop_reason "error" and the provider's message in
    ``text``. Raises CodecError for a URL no codec knows, a malformed body or a truncated stream.
    """
    api = detect(method, url)
    if api is None:
        raise CodecError(
            f"no wire codec for {method} {url}: the path matches none of the known apis"
        )
    found = codec(api)
    step = decode_request(api, url, request_body)
    step.status = status
    if 200 <= status < 300:
        framed = _framed(response_headers, step.stream)
        _checked(
            api,
            "response",
            found.decode_response,
            step,
            url,
            response_headers,
            response_body,
            framed,
        )
    else:
        _decode_error(found, step, response_headers, response_body)
    _checked(api, "response", _check_shape, step)
    step.cost_usd = cost(step)
    return step


_TEXT_FIELDS = ("model", "system", "text", "stop_reason", "response_id", "error_type")


def _check_shape(step: Step) -> None:
    """Refuse a step whose fields came out of the JSON with the wrong types (a model given as a
    list, a token count as text): everything downstream of a codec relies on them."""
    for name in _TEXT_FIELDS:
        value = getattr(step, name)
        if not isinstance(value, str):
            raise CodecError(f"malformed response: {name} is {type(value).__name__}, not text")
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        value = getattr(step.usage, name)
        if type(value) is not int:
            raise CodecError(
                f"malformed response: {name} is {type(value).__name__}, not an integer"
            )
    for call in step.tool_calls:
        if not isinstance(call.name, str) or not isinstance(call.id, str):
            raise CodecError("malformed response: a tool call's name or id is not text")


def encode_response(step: Step, *, stream: bool) -> EncodedResponse:
    """A valid response in ``step.api``'s wire format, as the official SDK parses it.

    A step whose stop_reason is "error" encodes as that provider's error response, with
    ``step.status`` if it is an error status and 500 otherwise.
    """
    found = codec(step.api)
    if step.stop_reason == "error":
        status = step.status if step.status is not None and step.status >= 400 else 500
        return found.encode_error(status, step.text)
    return found.encode_response(step, stream)


def encode_error(api: str, status: int, message: str) -> EncodedResponse:
    """The provider's own error response for ``status``."""
    if not 400 <= status <= 599:
        raise ValueError(f"an error response needs a 4xx or 5xx status, not {status}")
    return codec(api).encode_error(status, message)
