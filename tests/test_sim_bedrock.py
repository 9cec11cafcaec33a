"""The real boto3 bedrock-runtime client against the simulator: Converse and InvokeModel."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import boto3
import botocore.exceptions
import pytest
import urllib3.exceptions
from botocore.config import Config

from seamtape.sim import Fault, Simulator, StochasticPolicy, serve

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
HELLO = [{"role": "user", "content": [{"text": "Say hello to the simulator"}]}]
WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }
        },
    }
}
# InvokeModel for Anthropic models takes Anthropic's Messages body.
INVOKE_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hello to the simulator"}],
    }
)
STREAM_ERRORS = (urllib3.exceptions.HTTPError, botocore.exceptions.BotoCoreError)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with serve(StochasticPolicy(seed=1, tools_plan=["get_weather"])) as sim:
        yield sim


def client(sim: Simulator, attempts: int = 1):
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=sim.bedrock_endpoint_url,
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}),
    )


def test_converse(sim: Simulator) -> None:
    response = client(sim).converse(modelId=MODEL, messages=HELLO)
    assert "Say hello to the simulator" in response["output"]["message"]["content"][0]["text"]
    assert response["stopReason"] == "end_turn"
    assert response["usage"]["outputTokens"] > 0
    request = sim.requests[0]
    assert request.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    assert request.header("authorization").startswith("AWS4-HMAC-SHA256")


def test_request_id_header(sim: Simulator) -> None:
    api = client(sim)
    converse = api.converse(modelId=MODEL, messages=HELLO)["ResponseMetadata"]["RequestId"]
    invoke = api.invoke_model(modelId=MODEL, body=INVOKE_BODY)["ResponseMetadata"]["RequestId"]
    # Converse's codec sends the step's id; the server adds a (seed, index) id where none is sent.
    sim.wait_idle()  # invoke_model returns a streaming body before the server has sent it
    assert converse and ("x-amzn-RequestId", converse) in sim.responses[0].headers
    assert len(invoke) == 36 and ("x-amzn-requestid", invoke) in sim.responses[1].headers


def test_converse_stream(sim: Simulator) -> None:
    response = client(sim).converse_stream(modelId=MODEL, messages=HELLO)
    events = list(response["stream"])
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert "Say hello to the simulator" in text
    assert events[-1]["metadata"]["usage"]["outputTokens"] > 0
    assert any("messageStop" in e for e in events)


def test_converse_tool_round_trip(sim: Simulator) -> None:
    api = client(sim)
    tools = {"tools": [WEATHER]}
    first = api.converse(modelId=MODEL, messages=HELLO, toolConfig=tools)
    assert first["stopReason"] == "tool_use"
    message = first["output"]["message"]
    (use,) = [block["toolUse"] for block in message["content"] if "toolUse" in block]
    assert use["name"] == "get_weather" and isinstance(use["input"]["city"], str)
    result = {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": "hail, 3C"}]}}
    messages = [*HELLO, message, {"role": "user", "content": [result]}]
    final = api.converse(modelId=MODEL, messages=messages, toolConfig=tools)
    assert final["stopReason"] == "end_turn"
    assert "get_weather returned: hail, 3C" in final["output"]["message"]["content"][0]["text"]


def test_invoke_model(sim: Simulator) -> None:
    response = client(sim).invoke_model(modelId=MODEL, body=INVOKE_BODY)
    message = json.loads(response["body"].read())
    assert message["type"] == "message" and "Say hello" in message["content"][0]["text"]
    assert sim.requests[0].path.endswith("/invoke")


def test_invoke_model_with_response_stream(sim: Simulator) -> None:
    response = client(sim).invoke_model_with_response_stream(modelId=MODEL, body=INVOKE_BODY)
    events = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    text = "".join(
        e["delta"]["text"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert "Say hello to the simulator" in text


def test_throttling_is_the_aws_error(sim: Simulator) -> None:
    sim.inject(Fault.rate_limit(retry_after=0))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(sim).converse(modelId=MODEL, messages=HELLO)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_throttling_then_retry_succeeds(sim: Simulator) -> None:
    sim.inject(Fault.rate_limit(retry_after=0))
    response = client(sim, attempts=2).converse(modelId=MODEL, messages=HELLO)
    assert response["output"]["message"]["content"][0]["text"]
    assert [r.status for r in sim.responses] == [429, 200]


def test_overloaded_is_503(sim: Simulator) -> None:
    sim.inject(Fault.overloaded())
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client(sim).converse(modelId=MODEL, messages=HELLO)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_cut_stream_raises(sim: Simulator) -> None:
    sim.inject(Fault.cut_stream(after_frames=2))
    response = client(sim).converse_stream(modelId=MODEL, messages=HELLO)
    with pytest.raises(STREAM_ERRORS):
        list(response["stream"])


def test_stream_arrives_incrementally(sim: Simulator) -> None:
    release = threading.Event()
    sim.inject(Fault.hold_stream(release, after_frames=1))
    response = client(sim).converse_stream(modelId=MODEL, messages=HELLO)
    events = iter(response["stream"])
    assert "messageStart" in next(events)
    assert sim.responses == []
    release.set()
    assert "metadata" in list(events)[-1]
    assert sim.responses[0].complete
