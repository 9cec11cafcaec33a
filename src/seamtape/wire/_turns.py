"""Helpers over a request's conversation that every codec shares."""

from __future__ import annotations

from ._step import Message, ToolResult


def latest_tool_results(messages: list[Message]) -> list[ToolResult]:
    """The tool results the agent sent since the model's last turn, in order."""
    results: list[ToolResult] = []
    for message in reversed(messages):
        if message.role == "assistant":
            break
        results[:0] = message.tool_results
    return results


def join(texts: list[str]) -> str:
    """Text blocks of one request turn, one per line."""
    return "\n".join(t for t in texts if t)
