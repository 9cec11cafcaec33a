"""The google-genai agent on ``client.aio``, streaming each turn: record, then replay offline.

python examples/gemini_async_agent.py
"""

from __future__ import annotations

from typing import Any

from _shared import MAX_TURNS, QUESTION, record_then_replay, run_tool
from gemini_agent import CONFIG
from google import genai
from google.genai import types

import seamtape


async def agent(session: seamtape.Session) -> dict[str, Any]:
    client = genai.Client(
        api_key="not-a-real-key",
        http_options=types.HttpOptions(
            base_url=session.upstream, httpx_async_client=session.async_httpx2_client()
        ),
    )
    contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=QUESTION)])]
    called = []
    for _ in range(MAX_TURNS):
        stream = await client.aio.models.generate_content_stream(
            model="sim-gemini", contents=contents, config=CONFIG
        )
        chunks = [chunk async for chunk in stream]
        parts = [part for chunk in chunks for part in chunk.candidates[0].content.parts or []]
        calls = [part.function_call for part in parts if part.function_call]
        if not calls:
            return {"answer": "".join(part.text or "" for part in parts), "tools": called}
        contents.append(types.Content(role="model", parts=parts))
        results = []
        for call in calls:
            called.append(call.name)
            output = run_tool(call.name, dict(call.args or {}))
            results.append(
                types.Part.from_function_response(name=call.name, response={"result": output})
            )
        contents.append(types.Content(role="user", parts=results))
    return {"answer": None, "tools": called}


if __name__ == "__main__":
    record_then_replay(agent, upstream="gemini_base_url", name="gemini-async")
