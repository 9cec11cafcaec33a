"""The Chat Completions agent on ``AsyncOpenAI``, streaming each turn: record, then replay.

python examples/openai_chat_async_agent.py
"""

from __future__ import annotations

import json
from typing import Any

import openai
from _shared import MAX_TURNS, QUESTION, record_then_replay, run_tool
from openai_chat_agent import TOOL_PARAMS

import seamtape


async def agent(session: seamtape.Session) -> dict[str, Any]:
    client = openai.AsyncOpenAI(
        api_key="not-a-real-key",
        base_url=session.upstream,
        http_client=session.async_httpx2_client(),
    )
    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    called = []
    for _ in range(MAX_TURNS):
        async with client.chat.completions.stream(
            model="sim-gpt", messages=messages, tools=TOOL_PARAMS
        ) as stream:
            completion = await stream.get_final_completion()
        message = completion.choices[0].message
        messages.append(message.model_dump(exclude_none=True, exclude={"parsed"}))
        if not message.tool_calls:
            return {"answer": message.content, "tools": called}
        for call in message.tool_calls:
            called.append(call.function.name)
            output = run_tool(call.function.name, json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
    return {"answer": None, "tools": called}


if __name__ == "__main__":
    record_then_replay(agent, upstream="openai_base_url", name="openai-chat-async")
