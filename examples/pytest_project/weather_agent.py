"""The agent under test: asks Claude about the weather, runs the tool it asks for, answers."""

from __future__ import annotations

from typing import Any

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


def get_weather(city: str) -> str:
    return f"{city}: 21°C and sunny"


def plan_day(client: Any, question: str, *, max_turns: int = 4) -> dict[str, Any]:
    """Loop until the model answers without calling a tool; return the answer and the tools."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    tools_called: list[str] = []
    for _ in range(max_turns):
        reply = client.messages.create(
            model="claude-haiku-4-5", max_tokens=300, tools=TOOLS, messages=messages
        )
        messages.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
        uses = [b for b in reply.content if b.type == "tool_use"]
        if not uses:
            answer = "".join(b.text for b in reply.content if b.type == "text")
            return {"answer": answer, "tools": tools_called}
        results = []
        for use in uses:
            tools_called.append(use.name)
            output = get_weather(str(use.input.get("city", "")))
            results.append({"type": "tool_result", "tool_use_id": use.id, "content": output})
        messages.append({"role": "user", "content": results})
    return {"answer": None, "tools": tools_called}
