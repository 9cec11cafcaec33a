"""The real Anthropic SDK against the simulator: JSON, streams, tools, retries, faults."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import anthropic
import httpx2
import pytest

from seamtape.sim import Fault, ScriptedPolicy, Simulator, StochasticPolicy, serve

MODEL = "claude-haiku-4-5"
HELLO = [{"role": "user", "content": "Say hello to the simulator"}]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with serve(StochasticPolicy(seed=1, tools_plan=["get_weather"])) as sim:
        yield sim


def client(sim: Simulator, **options) -> anthropic.Anthropic:
    options.setdefault("max_retries", 0)
    return anthropic.Anthropic(api_key="x", base_url=sim.anthropic_base_url, **options)


def test_messages_json(sim: Simulator) -> None:
    message = client(sim).messages.create(model=MODEL, max_tokens=256, messages=HELLO)
    assert message.content[0].type == "text"
    assert "Say hello to the simulator" in message.content[0].text
    assert message.stop_reason == "end_turn" and message.model == MODEL
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert [(r.method, r.path) for r in sim.requests] == [("POST", "/v1/messages")]


def test_messages_stream(sim: Simulator) -> None:
    with client(sim).messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text and "Say hello" in text
    assert len(sim.responses[0].chunks) > 3  # one SSE frame per chunk


def test_async_json_and_stream(sim: Simulator) -> None:
    async def talk() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(api_key="x", base_url=sim.base_url) as aclient:
            message = await aclient.messages.create(model=MODEL, max_tokens=256, messages=HELLO)
            stream = await aclient.messages.create(
                model=MODEL, max_tokens=256, messages=HELLO, stream=True
            )
            deltas = [
                event.delta.text
                async for event in stream
                if event.type == "content_block_delta" and event.delta.type == "text_delta"
            ]
            return message.content[0].text, "".join(deltas)

    text, streamed = asyncio.run(talk())
    assert text == streamed and text


def test_tool_use_round_trip(sim: Simulator) -> None:
    api = client(sim)
    first = api.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    (call,) = [block for block in first.content if block.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input["city"], str)
    messages = [
        *HELLO,
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21C"}],
        },
    ]
    final = api.messages.create(model=MODEL, max_tokens=256, messages=messages, tools=[WEATHER])
    assert final.stop_reason == "end_turn"
    assert "get_weather returned: sunny, 21C" in final.content[0].text


def test_streamed_tool_call(sim: Simulator) -> None:
    with client(sim).messages.stream(
        model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER]
    ) as stream:
        final = stream.get_final_message()
    (call,) = [block for block in final.content if block.type == "tool_use"]
    assert call.name == "get_weather" and "city" in call.input


def test_rate_limit_then_retry_succeeds(sim: Simulator) -> None:
    sim.inject(Fault.rate_limit(retry_after=0))
    message = client(sim, max_retries=2).messages.create(
        model=MODEL, max_tokens=256, messages=HELLO
    )
    assert message.content[0].text
    assert sim.request_count == 2
    limited = sim.responses[0]
    assert limited.status == 429 and ("retry-after", "0") in limited.headers
    assert b'"rate_limit_error"' in limited.body


def test_overloaded_is_529(sim: Simulator) -> None:
    sim.inject(Fault.overloaded())
    with pytest.raises(anthropic.APIStatusError) as caught:
        client(sim).messages.create(model=MODEL, max_tokens=256, messages=HELLO)
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_server_error_is_500(sim: Simulator) -> None:
    sim.inject(Fault.server_error())
    with pytest.raises(anthropic.InternalServerError):
        client(sim).messages.create(model=MODEL, max_tokens=256, messages=HELLO)


def test_cut_stream_raises(sim: Simulator) -> None:
    sim.inject(Fault.cut_stream(after_frames=2))
    with (
        pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)),
        client(sim).messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream,
    ):
        stream.get_final_message()
    assert not sim.responses[0].complete and len(sim.responses[0].chunks) == 2


def test_stream_arrives_incrementally(sim: Simulator) -> None:
    release = threading.Event()
    sim.inject(Fault.hold_stream(release, after_frames=1))
    stream = client(sim).messages.create(model=MODEL, max_tokens=256, messages=HELLO, stream=True)
    events = iter(stream)
    assert next(events).type == "message_start"
    assert sim.responses == []  # the server is still holding back every later frame
    release.set()
    assert [event.type for event in events][-1] == "message_stop"
    assert sim.responses[0].complete


def test_two_identical_runs_give_identical_bytes() -> None:
    def run() -> list[tuple[int, list[tuple[str, str]], list[bytes]]]:
        with serve(StochasticPolicy(seed=9)) as sim:
            api = client(sim)
            api.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER])
            with api.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
                stream.get_final_message()
        return [(r.status, r.headers, r.chunks) for r in sim.responses]

    assert run() == run()


def test_a_scripted_conversation_streams_its_turns() -> None:
    script = ScriptedPolicy(
        {0: [{"name": "get_weather", "arguments": {"city": "Oslo"}}], 1: "It is snowing in Oslo."},
    )
    with serve(script) as sim:
        api = client(sim)
        with api.messages.stream(
            model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER]
        ) as stream:
            first = stream.get_final_message()
        (call,) = [block for block in first.content if block.type == "tool_use"]
        assert call.input == {"city": "Oslo"}
        result = {"type": "tool_result", "tool_use_id": call.id, "content": "snow"}
        messages = [
            *HELLO,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [result]},
        ]
        with api.messages.stream(
            model=MODEL, max_tokens=256, messages=messages, tools=[WEATHER]
        ) as stream:
            assert stream.get_final_text() == "It is snowing in Oslo."
