"""A tool-using agent on the official ``google-genai`` SDK: record, then replay offline.

python examples/gemini_agent.py
"""

from __future__ import annotations

from typing import Any

from _shared import MAX_TURNS, QUESTION, TOOLS, record_then_replay, run_tool
from google import genai
from google.genai import types

import seamtape

CONFIG = types.GenerateContentConfig(
    tools=[
        types.Tool(
            function_declarations=[
                types.FunctionDeclaration(
                    name=t["name"],
                    description=t["description"],
                    parameters_json_schema=t["parameters"],
                )
                for t in TOOLS
            ]
        )
    ]
)


def agent(session: seamtape.Session) -> dict[str, Any]:
    client = genai.Client(
        api_key="not-a-real-key",
        http_options=types.HttpOptions(
            base_url=session.upstream, httpx_client=session.httpx2_client()
        ),
    )
    contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=QUESTION)])]
    called = []
    for _ in range(MAX_TURNS):
        response = client.models.generate_content(
            model="sim-gemini", contents=contents, config=CONFIG
        )
        if not response.function_calls:
            return {"answer": response.text, "tools": called}
        contents.append(response.candidates[0].content)
        parts = []
        for call in response.function_calls:
            called.append(call.name)
            output = run_tool(call.name, dict(call.args or {}))
            parts.append(
                types.Part.from_function_response(name=call.name, response={"result": output})
            )
        contents.append(types.Content(role="user", parts=parts))
    return {"answer": None, "tools": called}


if __name__ == "__main__":
    record_then_replay(agent, upstream="gemini_base_url", name="gemini")
