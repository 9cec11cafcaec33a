"""Agents for the first-hour CLI tests: `seamtape record TAPE --agent first_hour_agents:NAME`."""

from __future__ import annotations

from typing import Any

from seamtape.faces._demo import trip_agent

__all__ = ["broken", "trip", "weather"]

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def trip(session: Any) -> dict[str, Any]:
    """The demo's anthropic agent, calling ``session.upstream``."""
    return trip_agent(session)


def weather(session: Any) -> dict[str, Any]:
    """One question, one tool if the model asks for it, then the answer; no retries."""
    import anthropic

    client = anthropic.Anthropic(
        api_key="unused",
        base_url=session.upstream,
        http_client=session.httpx2_client(),
        max_retries=0,
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Lisbon?"}]
    tools: list[str] = []
    for _ in range(4):
        reply = client.messages.create(
            model="sim-claude", max_tokens=128, tools=TOOLS, messages=messages
        )
        messages.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
        uses = [b for b in reply.content if b.type == "tool_use"]
        if not uses:
            return {"tools": tools, "answer": reply.content[0].text}
        tools += [u.name for u in uses]
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": u.id, "content": "21°C, sunny"}
                    for u in uses
                ],
            }
        )
    return {"tools": tools, "answer": None}


def broken(session: Any) -> Any:
    """An agent with a bug of its own."""
    raise ValueError("the agent's own bug")
