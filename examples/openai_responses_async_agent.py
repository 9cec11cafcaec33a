"""The Responses API agent on ``AsyncOpenAI``, streaming each turn: record, then replay.

python examples/openai_responses_async_agent.py
"""

from __future__ import annotations

import json
from typing import Any

import openai
from _shared import MAX_TURNS, QUESTION, record_then_replay, run_tool
from openai_responses_agent import TOOL_PARAMS

import seamtape


async def agent(session: seamtape.Session) -> dict[str, Any]:
    client = openai.AsyncOpenAI(
        api_key="not-a-real-key",
        base_url=session.upstream,
        http_client=session.async_httpx2_client(),
    )
    inputs: list[Any] = [{"role": "user", "content": QUESTION}]
    called = []
    for _ in range(MAX_TURNS):
        async with client.responses.stream(
            model="sim-gpt", input=inputs, tools=TOOL_PARAMS
        ) as stream:
            response = await stream.get_final_response()
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return {"answer": response.output_text, "tools": called}
        inputs += [item.model_dump(exclude_none=True) for item in response.output]
        for call in calls:
            called.append(call.name)
            output = run_tool(call.name, json.loads(call.arguments))
            inputs.append(
                {"type": "function_call_output", "call_id": call.call_id, "output": output}
            )
    return {"answer": None, "tools": called}


if __name__ == "__main__":
    record_then_replay(agent, upstream="openai_base_url", name="openai-responses-async")
