"""Stream framing checks: the boundaries each provider's SSE stream must keep.

The codecs decode what a stream says; these checks look at how it was framed: Anthropic's
``message_start`` … ``message_stop`` with each ``content_block_start`` closed once, in index
order, and no deltas for a block that is not open; OpenAI Chat's ``[DONE]`` and finish reason;
the Responses API's ``response.completed``; Gemini's ``finishReason`` on the last chunk.
Bedrock's event streams are framed in binary with checksums that the codec already checks.
"""

from __future__ import annotations

import json
from typing import Any

from seamtape.wire import CodecError, sse


def stream_problems(api: str, body: bytes) -> list[str]:
    """What is wrong with a stream's framing (empty when nothing is)."""
    try:
        events = sse.parse(body)
    except CodecError as exc:
        return [f"the stream is not valid SSE: {exc}"]
    check = _CHECKS.get(api)
    return check(events) if check is not None else []


def _data(event: sse.Event) -> Any:
    try:
        return json.loads(event.data)
    except ValueError:
        return None


def _anthropic(events: list[sse.Event]) -> list[str]:
    problems: list[str] = []
    names = [e.event or (_data(e) or {}).get("type", "") for e in events]
    if not names or names[0] != "message_start":
        problems.append("the stream does not begin with message_start")
    if not names or names[-1] != "message_stop":
        problems.append("the stream does not end with message_stop")
    open_block: int | None = None
    next_index = 0
    for event, name in zip(events, names, strict=True):
        doc = _data(event) or {}
        index = doc.get("index")
        if name == "content_block_start":
            if open_block is not None:
                problems.append(f"block {index} starts while block {open_block} is still open")
            if index != next_index:
                problems.append(f"block {index} starts where block {next_index} was expected")
            open_block, next_index = index, (index if isinstance(index, int) else next_index) + 1
        elif name == "content_block_delta" and index != open_block:
            problems.append(f"a delta for block {index}, which is not open")
        elif name == "content_block_stop":
            if index != open_block:
                problems.append(f"block {index} stops but was not open")
            open_block = None
    if open_block is not None:
        problems.append(f"block {open_block} is never closed")
    return problems


def _openai_chat(events: list[sse.Event]) -> list[str]:
    problems: list[str] = []
    if not events or events[-1].data.strip() != "[DONE]":
        problems.append("the stream does not end with [DONE]")
    finished = any(
        choice.get("finish_reason")
        for e in events
        if isinstance(_data(e), dict)
        for choice in _data(e).get("choices") or []
    )
    if not finished:
        problems.append("no chunk carries a finish_reason")
    return problems


def _openai_responses(events: list[sse.Event]) -> list[str]:
    names = [e.event or (_data(e) or {}).get("type", "") for e in events]
    problems = []
    if not names or names[0] != "response.created":
        problems.append("the stream does not begin with response.created")
    if not names or names[-1] not in (
        "response.completed",
        "response.incomplete",
        "response.failed",
    ):
        problems.append("the stream does not end with response.completed")
    return problems


def _gemini(events: list[sse.Event]) -> list[str]:
    if not events:
        return ["the stream carries no chunk"]
    last = _data(events[-1]) or {}
    candidates = last.get("candidates") or [{}]
    if not candidates[0].get("finishReason"):
        return ["the last chunk carries no finishReason"]
    return []


_CHECKS = {
    "anthropic.messages": _anthropic,
    "openai.chat": _openai_chat,
    "openai.responses": _openai_responses,
    "gemini.generate": _gemini,
}
