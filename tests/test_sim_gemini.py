"""The real google-genai SDK against the simulator: generateContent and its SSE stream."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx2
import pytest
from google import genai
from google.genai import errors, types

from seamtape.sim import Fault, Simulator, StochasticPolicy, serve

MODEL = "gemini-2.5-flash"
HELLO = "Say hello to the simulator"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather for a city.",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        )
    ]
)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with serve(StochasticPolicy(seed=1, tools_plan=["get_weather"])) as sim:
        yield sim


def client(sim: Simulator, retry: types.HttpRetryOptions | None = None) -> genai.Client:
    # v1beta as the public Gemini API serves it (this SDK version defaults to v1; both route).
    options = types.HttpOptions(
        base_url=sim.gemini_base_url, api_version="v1beta", retry_options=retry
    )
    return genai.Client(api_key="x", http_options=options)


def test_generate_content_json(sim: Simulator) -> None:
    api = client(sim)
    response = api.models.generate_content(model=MODEL, contents=HELLO)
    assert HELLO in response.text
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.candidates_token_count > 0
    assert sim.requests[0].path == f"/v1beta/models/{MODEL}:generateContent"


def test_generate_content_stream(sim: Simulator) -> None:
    api = client(sim)
    chunks = list(api.models.generate_content_stream(model=MODEL, contents=HELLO))
    assert len(chunks) > 1
    assert HELLO in "".join(chunk.text or "" for chunk in chunks)
    assert sim.requests[0].path == f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"


def test_async_json_and_stream(sim: Simulator) -> None:
    async def talk() -> tuple[str, str]:
        api = client(sim)  # the Client closes its HTTP pool when collected: keep it alive
        aio = api.aio
        response = await aio.models.generate_content(model=MODEL, contents=HELLO)
        stream = await aio.models.generate_content_stream(model=MODEL, contents=HELLO)
        parts = [chunk.text or "" async for chunk in stream]
        return response.text, "".join(parts)

    text, streamed = asyncio.run(talk())
    assert text == streamed and HELLO in text


def test_function_call_round_trip(sim: Simulator) -> None:
    api = client(sim)
    config = types.GenerateContentConfig(tools=[WEATHER])
    first = api.models.generate_content(model=MODEL, contents=HELLO, config=config)
    (call,) = first.function_calls
    assert call.name == "get_weather" and isinstance(call.args["city"], str)
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text=HELLO)]),
        first.candidates[0].content,
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name=call.name, response={"sky": "cloudy"})],
        ),
    ]
    final = api.models.generate_content(model=MODEL, contents=contents, config=config)
    assert not final.function_calls
    assert "get_weather returned:" in final.text and "cloudy" in final.text


def test_rate_limit_then_retry_succeeds(sim: Simulator) -> None:
    sim.inject(Fault.rate_limit(retry_after=0))
    retry = types.HttpRetryOptions(attempts=2, initial_delay=0, max_delay=0, jitter=0)
    api = client(sim, retry)
    response = api.models.generate_content(model=MODEL, contents=HELLO)
    assert HELLO in response.text
    assert [r.status for r in sim.responses] == [429, 200]
    assert b'"RESOURCE_EXHAUSTED"' in sim.responses[0].body


def test_server_errors(sim: Simulator) -> None:
    api = client(sim)
    sim.inject(Fault.overloaded())
    with pytest.raises(errors.ServerError) as caught:
        api.models.generate_content(model=MODEL, contents=HELLO)
    assert caught.value.code == 503


def test_cut_stream_raises(sim: Simulator) -> None:
    api = client(sim)
    sim.inject(Fault.cut_stream(after_frames=1))
    with pytest.raises(httpx2.RemoteProtocolError):
        list(api.models.generate_content_stream(model=MODEL, contents=HELLO))


def test_stream_arrives_incrementally(sim: Simulator) -> None:
    api = client(sim)
    release = threading.Event()
    sim.inject(Fault.hold_stream(release, after_frames=1))
    chunks = api.models.generate_content_stream(model=MODEL, contents=HELLO)
    assert next(chunks).text
    assert sim.responses == []
    release.set()
    assert list(chunks)
    assert sim.responses[0].complete
