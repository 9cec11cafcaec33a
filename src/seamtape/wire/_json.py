"""JSON in and out of the wire: loading with clear errors, compact dumping, tool arguments."""

from __future__ import annotations

import json
from typing import Any

from ._step import ToolCall
from .errors import CodecError


def load(data: bytes | str, what: str) -> Any:
    """Parse JSON, raising CodecError that names ``what`` (e.g. "response body")."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise CodecError(f"{what} is JSON nested too deeply to read") from None


def load_object(data: bytes | str, what: str) -> dict[str, Any]:
    """Parse a JSON object, raising CodecError for anything else."""
    value = load(data, what)
    if not isinstance(value, dict):
        raise CodecError(f"{what} is JSON {type(value).__name__}, not an object")
    return value


def dumps(value: Any) -> str:
    """Compact JSON, as the providers send it (UTF-8, no spaces)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def dump(value: Any) -> bytes:
    return dumps(value).encode("utf-8")


def call(id: str, name: str, arguments: Any) -> ToolCall:
    """A ToolCall from arguments given as a JSON string (OpenAI, streams) or a decoded value."""
    if isinstance(arguments, str):
        if not arguments.strip():
            return ToolCall(id, name, {})
        try:
            arguments_value = json.loads(arguments)
        except (ValueError, RecursionError):
            return ToolCall(id, name, {}, raw_arguments=arguments)
        if isinstance(arguments_value, dict):
            return ToolCall(id, name, arguments_value)
        return ToolCall(id, name, {}, raw_arguments=arguments)
    if arguments is None:
        return ToolCall(id, name, {})
    if isinstance(arguments, dict):
        return ToolCall(id, name, arguments)
    return ToolCall(id, name, {}, raw_arguments=dumps(arguments))


def arguments_text(call: ToolCall) -> str:
    """The arguments as the JSON text a provider streams or embeds."""
    return call.raw_arguments if call.raw_arguments is not None else dumps(call.arguments)


def arguments_value(call: ToolCall) -> Any:
    """The arguments as a JSON value, for formats that embed an object (Anthropic, Gemini).

    Raw text that does not parse cannot be embedded as an object; it travels as a string.
    """
    if call.raw_arguments is None:
        return call.arguments
    try:
        return json.loads(call.raw_arguments)
    except (ValueError, RecursionError):
        return call.raw_arguments
