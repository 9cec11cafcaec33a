"""A tool-using agent on the official ``openai`` SDK, Responses API: record, then replay.

python examples/openai_responses_agent.py
"""

from __future__ import annotations

import json
from typing import Any

import openai
from _shared import MAX_TURNS, QUESTION, TOOLS, record_then_replay, run_tool

import seamtape

TOOL_PARAMS = [{"type": "function", **t} for t in TOOLS]


def agent(session: seamtape.Session) -> dict[str, Any]:
    client = openai.OpenAI(
        api_key="not-a-real-key", base_url=session.upstream, http_client=session.httpx2_client()
    )
    inputs: list[Any] = [{"role": "user", "content": QUESTION}]
    called = []
    for _ in range(MAX_TURNS):
        response = client.responses.create(model="sim-gpt", input=inputs, tools=TOOL_PARAMS)
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return {"answer": response.output_text, "tools": called}
        inputs += response.output
        for call in calls:
            called.append(call.name)
            output = run_tool(call.name, json.loads(call.arguments))
            inputs.append(
                {"type": "function_call_output", "call_id": call.call_id, "output": output}
            )
    return {"answer": None, "tools": called}


if __name__ == "__main__":
    record_then_replay(agent, upstream="openai_base_url", name="openai-responses")
