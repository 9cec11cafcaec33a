"""The real OpenAI SDK against the simulator: Chat Completions and Responses, sync and async."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import httpx2
import openai
import pytest

from seamtape.sim import Fault, Simulator, StochasticPolicy, serve

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "Say hello to the simulator"}]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
CHAT_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}
RESPONSES_TOOL = {"type": "function", "name": "get_weather", "parameters": SCHEMA}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with serve(StochasticPolicy(seed=1, tools_plan=["get_weather"])) as sim:
        yield sim


def client(sim: Simulator, **options) -> openai.OpenAI:
    options.setdefault("max_retries", 0)
    return openai.OpenAI(api_key="x", base_url=sim.openai_base_url, **options)


# --- chat completions -------------------------------------------------------------------------


def test_chat_json(sim: Simulator) -> None:
    completion = client(sim).chat.completions.create(model=MODEL, messages=HELLO)
    choice = completion.choices[0]
    assert "Say hello to the simulator" in choice.message.content
    assert choice.finish_reason == "stop" and completion.usage.completion_tokens > 0
    assert sim.requests[0].path == "/v1/chat/completions"
    assert sim.responses[0].headers[-1][0] == "content-length"
    assert ("x-ratelimit-remaining-requests", "999") in sim.responses[0].headers


def test_chat_stream(sim: Simulator) -> None:
    stream = client(sim).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert "Say hello to the simulator" in text
    sim.wait_idle()  # the SDK stops reading at [DONE], before the chunked terminator
    assert sim.responses[0].chunks[-1] == b"data: [DONE]\n\n"


def test_chat_async_json_and_stream(sim: Simulator) -> None:
    async def talk() -> tuple[str, str]:
        async with openai.AsyncOpenAI(api_key="x", base_url=sim.openai_base_url) as aclient:
            completion = await aclient.chat.completions.create(model=MODEL, messages=HELLO)
            stream = await aclient.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return completion.choices[0].message.content, "".join(parts)

    text, streamed = asyncio.run(talk())
    assert text == streamed and text


def test_chat_tool_round_trip(sim: Simulator) -> None:
    api = client(sim)
    first = api.chat.completions.create(model=MODEL, messages=HELLO, tools=[CHAT_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and isinstance(arguments["days"], int)
    messages = [
        *HELLO,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "rain, 12C"},
    ]
    final = api.chat.completions.create(model=MODEL, messages=messages, tools=[CHAT_TOOL])
    assert "get_weather returned: rain, 12C" in final.choices[0].message.content


def test_chat_rate_limit_then_retry_succeeds(sim: Simulator) -> None:
    sim.inject(Fault.rate_limit(retry_after=0.001))
    completion = client(sim, max_retries=1).chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].message.content
    assert [r.status for r in sim.responses] == [429, 200]
    assert b'"rate_limit_exceeded"' in sim.responses[0].body


def test_chat_overloaded_is_503(sim: Simulator) -> None:
    sim.inject(Fault.overloaded())
    with pytest.raises(openai.InternalServerError) as caught:
        client(sim).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 503


def test_chat_cut_stream_raises(sim: Simulator) -> None:
    sim.inject(Fault.cut_stream(after_frames=2))
    stream = client(sim).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    with pytest.raises((httpx2.RemoteProtocolError, openai.APIConnectionError)):
        list(stream)


def test_chat_stream_arrives_incrementally(sim: Simulator) -> None:
    release = threading.Event()
    sim.inject(Fault.hold_stream(release, after_frames=1))
    chunks = iter(client(sim).chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    first = next(chunks)
    assert first.object == "chat.completion.chunk"
    assert sim.responses == []
    release.set()
    assert list(chunks)
    sim.wait_idle()
    assert sim.responses[0].complete


def test_concurrent_async_requests(sim: Simulator) -> None:
    async def gather() -> list[str]:
        async with openai.AsyncOpenAI(
            api_key="x", base_url=sim.openai_base_url, max_retries=0
        ) as aclient:
            calls = [
                aclient.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": f"question {i}"}]
                )
                for i in range(5)
            ]
            return [c.choices[0].message.content for c in await asyncio.gather(*calls)]

    answers = asyncio.run(gather())
    assert all(f"question {i}" in answer for i, answer in enumerate(answers))
    assert sorted(r.index for r in sim.requests) == [0, 1, 2, 3, 4]


# --- responses --------------------------------------------------------------------------------


def test_responses_json(sim: Simulator) -> None:
    response = client(sim).responses.create(model=MODEL, input="Say hello to the simulator")
    assert "Say hello to the simulator" in response.output_text
    assert response.status == "completed"
    assert sim.requests[0].path == "/v1/responses"


def test_responses_stream(sim: Simulator) -> None:
    stream = client(sim).responses.create(
        model=MODEL, input="Say hello to the simulator", stream=True
    )
    events = list(stream)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].type == "response.completed"
    assert text == events[-1].response.output_text and "Say hello" in text


def test_responses_async(sim: Simulator) -> None:
    async def talk() -> tuple[str, str]:
        async with openai.AsyncOpenAI(api_key="x", base_url=sim.openai_base_url) as aclient:
            response = await aclient.responses.create(model=MODEL, input="hi there")
            stream = await aclient.responses.create(model=MODEL, input="hi there", stream=True)
            events = [event async for event in stream]
            return response.output_text, events[-1].response.output_text

    text, streamed = asyncio.run(talk())
    assert text == streamed and "hi there" in text


def test_responses_tool_round_trip(sim: Simulator) -> None:
    api = client(sim)
    first = api.responses.create(model=MODEL, input=HELLO, tools=[RESPONSES_TOOL])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and "city" in json.loads(call.arguments)
    follow_up = [
        *HELLO,
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "fog, 9C"},
    ]
    final = api.responses.create(model=MODEL, input=follow_up, tools=[RESPONSES_TOOL])
    assert "get_weather returned: fog, 9C" in final.output_text


def test_responses_cut_stream_raises(sim: Simulator) -> None:
    sim.inject(Fault.cut_stream(after_frames=3))
    stream = client(sim).responses.create(model=MODEL, input="hi", stream=True)
    with pytest.raises((httpx2.RemoteProtocolError, openai.APIConnectionError)):
        list(stream)
