"""A tool-using agent on ``boto3``'s bedrock-runtime Converse API: record, then replay offline.

    python examples/bedrock_converse_agent.py

``session.attach_botocore(client)`` tees every operation of the client through the session.
Replaying needs no network and no AWS account; botocore still signs, so dummy keys are given.
"""

from __future__ import annotations

from typing import Any

import boto3
from _shared import MAX_TURNS, QUESTION, TOOLS, record_then_replay, run_tool

import seamtape

TOOL_CONFIG = {
    "tools": [
        {
            "toolSpec": {
                "name": t["name"],
                "description": t["description"],
                "inputSchema": {"json": t["parameters"]},
            }
        }
        for t in TOOLS
    ]
}


def agent(session: seamtape.Session) -> dict[str, Any]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=session.upstream,
        aws_access_key_id="not-a-real-key",
        aws_secret_access_key="not-a-real-secret",
    )
    session.attach_botocore(client)
    messages: list[Any] = [{"role": "user", "content": [{"text": QUESTION}]}]
    called = []
    for _ in range(MAX_TURNS):
        response = client.converse(
            modelId="anthropic.sim-claude-v1", messages=messages, toolConfig=TOOL_CONFIG
        )
        message = response["output"]["message"]
        messages.append(message)
        if response["stopReason"] != "tool_use":
            text = "".join(block.get("text", "") for block in message["content"])
            return {"answer": text, "tools": called}
        results = []
        for block in message["content"]:
            if "toolUse" in block:
                use = block["toolUse"]
                called.append(use["name"])
                output = run_tool(use["name"], use["input"])
                results.append(
                    {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": output}]}}
                )
        messages.append({"role": "user", "content": results})
    return {"answer": None, "tools": called}


if __name__ == "__main__":
    record_then_replay(agent, upstream="bedrock_endpoint_url", name="bedrock-converse")
