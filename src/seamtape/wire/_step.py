"""The normalized view of one exchange: what the model was asked and what it answered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ToolCall:
    """A tool call the model made. ``raw_arguments`` keeps argument text that is not a JSON object.

    Models sometimes emit arguments that do not parse; the codecs keep that text verbatim in
    ``raw_arguments`` (with ``arguments`` left empty) and encode it back byte for byte, so a
    malformed call survives a round trip and can be injected on purpose.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str | None = None


@dataclass(slots=True)
class ToolResult:
    """A tool result the agent sent back to the model, as carried in a request."""

    call_id: str
    content: str
    is_error: bool = False


@dataclass(slots=True)
class ToolSpec:
    name: str
    description: str = ""
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Message:
    """One turn of the conversation as sent in a request, reduced to text and tool traffic."""

    role: str  # "system" | "user" | "assistant" | "tool"
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)


@dataclass(slots=True)
class Usage:
    """Token counts. ``input_tokens`` excludes cache reads and writes, which are counted apart.

    That is Anthropic's convention; OpenAI and Gemini report cached tokens inside the prompt
    count, and their codecs subtract them so that cost is ``input + cache reads + cache writes``
    at their own rates on every provider.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(slots=True)
class Step:
    """An exchange seen through a wire codec.

    Request side: ``model``, ``system``, ``messages``, ``tools``, ``tool_results`` (those in the
    latest turn), ``stream``. Response side: ``text``, ``tool_calls``, ``stop_reason``, ``usage``,
    ``cost_usd``. ``api`` names the wire format, e.g. ``"anthropic.messages"``.
    ``server_tool_calls`` are tools the provider ran itself (web search, code execution):
    kept apart from ``tool_calls``, which the agent must answer.

    ``stop_reason`` is normalized: ``"end_turn"``, ``"tool_use"``, ``"max_tokens"``,
    ``"stop_sequence"``, ``"content_filter"``, or ``"error"`` for a non-2xx response or an error
    event in a stream (the message is then in ``text``, the provider's error type in
    ``error_type``). A provider value with no normalized meaning is kept as sent (e.g. Gemini's
    ``"RECITATION"``) and encoded back unchanged. ``status`` is the HTTP status when the step
    was decoded from a response; ``created`` is the Unix time the provider stamped on the
    response, where the format has one (OpenAI).
    """

    provider: str  # "anthropic" | "openai" | "gemini" | "bedrock"
    api: str
    model: str = ""
    stream: bool = False
    system: str = ""
    messages: list[Message] = field(default_factory=list)
    tools: list[ToolSpec] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    response_id: str = ""
    status: int | None = None
    error_type: str = ""
    created: int = 0
    server_tool_calls: list[ToolCall] = field(default_factory=list)
