"""What OpenAI's Chat Completions and Responses share: the error body and cached-token usage."""

from __future__ import annotations

from . import _json
from ._codec import EncodedResponse, Headers, json_response

# status -> (type, code), as the API sends them
_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def decode_error(headers: Headers, body: bytes) -> tuple[str, str]:
    error = _json.load_object(body, "error body").get("error") or {}
    return error.get("code") or error.get("type") or "", error.get("message", "")


def encode_error(status: int, message: str) -> EncodedResponse:
    kind, code = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_response(_json.dump(body), status=status)


def uncached(total: int | None, cached: int | None) -> int:
    """Input tokens without the cached ones, which OpenAI counts inside the prompt total."""
    return (total or 0) - (cached or 0)
