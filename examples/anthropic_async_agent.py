"""The anthropic agent on ``AsyncAnthropic``, streaming each turn: record, then replay offline.

python examples/anthropic_async_agent.py
"""

from __future__ import annotations

from typing import Any

import anthropic
from _shared import MAX_TURNS, QUESTION, record_then_replay, run_tool
from anthropic_agent import TOOL_PARAMS

import seamtape


async def agent(session: seamtape.Session) -> dict[str, Any]:
    client = anthropic.AsyncAnthropic(
        api_key="not-a-real-key",
        base_url=session.upstream,
        http_client=session.async_httpx2_client(),
    )
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    called = []
    for _ in range(MAX_TURNS):
        async with client.messages.stream(
            model="sim-claude", max_tokens=512, tools=TOOL_PARAMS, messages=messages
        ) as stream:
            reply = await stream.get_final_message()
        messages.append({"role": "assistant", "content": reply.content})
        if reply.stop_reason != "tool_use":
            text = "".join(block.text for block in reply.content if block.type == "text")
            return {"answer": text, "tools": called}
        results = []
        for block in reply.content:
            if block.type == "tool_use":
                called.append(block.name)
                output = run_tool(block.name, dict(block.input))
                results.append({"type": "tool_result", "tool_use_id": block.id, "content": output})
        messages.append({"role": "user", "content": results})
    return {"answer": None, "tools": called}


if __name__ == "__main__":
    record_then_replay(agent, upstream="anthropic_base_url", name="anthropic-async")
