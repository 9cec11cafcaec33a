"""Every provider on its official SDK: record against the simulator, stop it, replay the tape.

For each SDK (anthropic, openai Chat Completions, openai Responses, google-genai), sync and
async, JSON and stream, one small tool-using conversation is recorded: a 429 that the SDK
retries on its own, a tool call, the final answer. All runs are recorded against one
simulator, which is then stopped; every replay has only the tape.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as gtypes

import seamtape
from seamtape import wire
from seamtape.sim import Fault, Simulator, StochasticPolicy, serve

QUESTION = "What is the weather in Lisbon?"
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
# Response headers an SDK reads (request ids, retry hints) and the retry count it sends.
WATCHED = ("request-id", "x-request-id", "retry-after", "retry-after-ms")
RETRY_COUNT = "x-stainless-retry-count"
UPSTREAM = {
    "anthropic": "anthropic_base_url",
    "openai_chat": "openai_base_url",
    "openai_responses": "openai_base_url",
    "gemini": "gemini_base_url",
}
REQUEST_ID = {
    "anthropic": "request-id",
    "openai_chat": "x-request-id",
    "openai_responses": "x-request-id",
}


@dataclass(frozen=True)
class Case:
    sdk: str
    is_async: bool
    stream: bool

    @property
    def id(self) -> str:
        return f"{self.sdk}-{'async' if self.is_async else 'sync'}-{'stream' if self.stream else 'json'}"


CASES = [Case(sdk, a, s) for sdk in UPSTREAM for a in (False, True) for s in (False, True)]


@dataclass
class Turn:
    """What the SDK parsed from one answer."""

    text: str
    calls: list[tuple[str, dict[str, Any]]]  # (tool name, arguments)
    parsed: Any  # the SDK's own objects, dumped


@dataclass
class Run:
    run_id: str
    digest: str
    turns: list[Turn]
    seen: list[dict[str, Any]]  # per attempt, as the SDK's HTTP client saw it
    stats: dict[str, int] = field(default_factory=dict)


# --- one conversation per SDK ------------------------------------------------------------------


def _http(session: seamtape.Session, case: Case, seen: list[dict[str, Any]]) -> Any:
    """The session's httpx2 client (sync or async), its hooks noting what the SDK gets back:
    each attempt's status, watched headers, and the retry count the SDK sent with it."""

    def on_response(response: Any) -> None:
        entry = {name: response.headers.get(name) for name in WATCHED}
        entry[RETRY_COUNT] = response.request.headers.get(RETRY_COUNT)
        seen.append({"status": response.status_code, **entry})

    async def aon_response(response: Any) -> None:
        on_response(response)

    if case.is_async:
        return session.async_httpx2_client(event_hooks={"response": [aon_response]})
    return session.httpx2_client(event_hooks={"response": [on_response]})


def _anthropic(session: seamtape.Session, case: Case, seen: list[dict[str, Any]]) -> Any:
    make = anthropic.AsyncAnthropic if case.is_async else anthropic.Anthropic
    http = _http(session, case, seen)
    client = make(api_key="not-a-real-key", base_url=session.upstream, http_client=http)
    tool = {"name": "get_weather", "description": WEATHER["description"]}
    tool["input_schema"] = WEATHER["parameters"]
    args = {"model": "sim-claude", "max_tokens": 256, "tools": [tool]}

    def turn(message: Any, events: list[Any]) -> Turn:
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = [(b.name, dict(b.input)) for b in message.content if b.type == "tool_use"]
        return Turn(text, calls, {"message": message.model_dump(), "events": events})

    def follow(messages: list[Any], message: Any) -> list[Any]:
        (use,) = [b for b in message.content if b.type == "tool_use"]
        result = {"type": "tool_result", "tool_use_id": use.id, "content": "Lisbon: 21C, sunny"}
        assistant = {"role": "assistant", "content": message.content}
        return [*messages, assistant, {"role": "user", "content": [result]}]

    async def aask(messages: list[Any]) -> tuple[Any, list[Any]]:
        if not case.stream:
            return await client.messages.create(messages=messages, **args), []
        async with client.messages.stream(messages=messages, **args) as stream:
            events = [e.model_dump() async for e in stream]
            return await stream.get_final_message(), events

    def ask(messages: list[Any]) -> tuple[Any, list[Any]]:
        if not case.stream:
            return client.messages.create(messages=messages, **args), []
        with client.messages.stream(messages=messages, **args) as stream:
            events = [e.model_dump() for e in stream]
            return stream.get_final_message(), events

    return _converse(case, ask, aask, turn, follow, [{"role": "user", "content": QUESTION}])


def _openai_client(session: seamtape.Session, case: Case, seen: list[dict[str, Any]]) -> Any:
    make = openai.AsyncOpenAI if case.is_async else openai.OpenAI
    http = _http(session, case, seen)
    return make(api_key="not-a-real-key", base_url=session.upstream, http_client=http)


def _openai_chat(session: seamtape.Session, case: Case, seen: list[dict[str, Any]]) -> Any:
    client = _openai_client(session, case, seen)
    args = {"model": "sim-gpt", "tools": [{"type": "function", "function": WEATHER}]}

    def turn(completion: Any, events: list[Any]) -> Turn:
        message = completion.choices[0].message
        calls = [
            (c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []
        ]
        return Turn(
            message.content or "", calls, {"completion": completion.model_dump(), "events": events}
        )

    def follow(messages: list[Any], completion: Any) -> list[Any]:
        message = completion.choices[0].message
        (call,) = message.tool_calls
        reply = {"role": "tool", "tool_call_id": call.id, "content": "Lisbon: 21C, sunny"}
        return [*messages, message.model_dump(exclude_none=True, exclude={"parsed"}), reply]

    def ask(messages: list[Any]) -> tuple[Any, list[Any]]:
        if not case.stream:
            return client.chat.completions.create(messages=messages, **args), []
        with client.chat.completions.stream(messages=messages, **args) as stream:
            events = [e.type for e in stream]
            return stream.get_final_completion(), events

    async def aask(messages: list[Any]) -> tuple[Any, list[Any]]:
        if not case.stream:
            return await client.chat.completions.create(messages=messages, **args), []
        async with client.chat.completions.stream(messages=messages, **args) as stream:
            events = [e.type async for e in stream]
            return await stream.get_final_completion(), events

    return _converse(case, ask, aask, turn, follow, [{"role": "user", "content": QUESTION}])


def _openai_responses(session: seamtape.Session, case: Case, seen: list[dict[str, Any]]) -> Any:
    client = _openai_client(session, case, seen)
    args = {"model": "sim-gpt", "tools": [{"type": "function", **WEATHER}]}

    def turn(response: Any, events: list[Any]) -> Turn:
        calls = [
            (item.name, json.loads(item.arguments))
            for item in response.output
            if item.type == "function_call"
        ]
        return Turn(
            response.output_text, calls, {"response": response.model_dump(), "events": events}
        )

    def follow(inputs: list[Any], response: Any) -> list[Any]:
        (call,) = [item for item in response.output if item.type == "function_call"]
        output = {"type": "function_call_output", "call_id": call.call_id, "output": "21C, sunny"}
        return [*inputs, *(i.model_dump(exclude_none=True) for i in response.output), output]

    def ask(inputs: list[Any]) -> tuple[Any, list[Any]]:
        if not case.stream:
            return client.responses.create(input=inputs, **args), []
        with client.responses.stream(input=inputs, **args) as stream:
            events = [e.type for e in stream]
            return stream.get_final_response(), events

    async def aask(inputs: list[Any]) -> tuple[Any, list[Any]]:
        if not case.stream:
            return await client.responses.create(input=inputs, **args), []
        async with client.responses.stream(input=inputs, **args) as stream:
            events = [e.type async for e in stream]
            return await stream.get_final_response(), events

    return _converse(case, ask, aask, turn, follow, [{"role": "user", "content": QUESTION}])


def _gemini(session: seamtape.Session, case: Case, seen: list[dict[str, Any]]) -> Any:
    # Gemini's SDK retries only when asked to; no waiting between attempts in a test.
    retry = gtypes.HttpRetryOptions(attempts=2, initial_delay=0, max_delay=0, jitter=0)
    http = {"httpx_async_client" if case.is_async else "httpx_client": _http(session, case, seen)}
    options = gtypes.HttpOptions(base_url=session.upstream, retry_options=retry, **http)
    client = genai.Client(api_key="not-a-real-key", http_options=options)
    models = client.aio.models if case.is_async else client.models
    declaration = gtypes.FunctionDeclaration(
        name=WEATHER["name"],
        description=WEATHER["description"],
        parameters_json_schema=WEATHER["parameters"],
    )
    config = gtypes.GenerateContentConfig(tools=[gtypes.Tool(function_declarations=[declaration])])
    args = {"model": "sim-gemini", "config": config}

    def turn(chunks: list[Any], events: list[Any]) -> Turn:
        parts = [p for c in chunks for p in c.candidates[0].content.parts or []]
        text = "".join(p.text or "" for p in parts)
        calls = [
            (p.function_call.name, dict(p.function_call.args)) for p in parts if p.function_call
        ]
        parsed = [c.model_dump(mode="json", exclude={"sdk_http_response"}) for c in chunks]
        return Turn(text, calls, parsed)

    def follow(contents: list[Any], chunks: list[Any]) -> list[Any]:
        parts = [p for c in chunks for p in c.candidates[0].content.parts or []]
        (call,) = [p.function_call for p in parts if p.function_call]
        result = gtypes.Part.from_function_response(name=call.name, response={"result": "21C"})
        return [
            *contents,
            gtypes.Content(role="model", parts=parts),
            gtypes.Content(role="user", parts=[result]),
        ]

    def ask(contents: list[Any]) -> tuple[Any, list[Any]]:
        if not case.stream:
            return [models.generate_content(contents=contents, **args)], []
        return list(models.generate_content_stream(contents=contents, **args)), []

    async def aask(contents: list[Any]) -> tuple[Any, list[Any]]:
        if not case.stream:
            return [await models.generate_content(contents=contents, **args)], []
        stream = await models.generate_content_stream(contents=contents, **args)
        return [chunk async for chunk in stream], []

    first = [gtypes.Content(role="user", parts=[gtypes.Part(text=QUESTION)])]
    return _converse(case, ask, aask, turn, follow, first)


def _converse(
    case: Case,
    ask: Callable[..., Any],
    aask: Callable[..., Any],
    turn: Callable[..., Turn],
    follow: Callable[..., Any],
    history: list[Any],
) -> list[Turn]:
    """Ask, answer the one tool call, ask again: two turns, in the SDK's sync or async form."""

    async def both() -> list[Turn]:
        first = await aask(history)
        second = await aask(follow(history, first[0]))
        return [turn(*first), turn(*second)]

    if case.is_async:
        return asyncio.run(both())
    first = ask(history)
    second = ask(follow(history, first[0]))
    return [turn(*first), turn(*second)]


AGENTS = {
    "anthropic": _anthropic,
    "openai_chat": _openai_chat,
    "openai_responses": _openai_responses,
    "gemini": _gemini,
}


# --- record everything once, stop the simulator ------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Run | Exception]]:
    """Every case recorded against one simulator, which is stopped before any test replays."""
    folder = tmp_path_factory.mktemp("providers")
    out: dict[str, tuple[Path, Run | Exception]] = {}
    with serve(StochasticPolicy(seed=3, tools_plan=["get_weather"])) as sim:
        for case in CASES:
            out[case.id] = _record(sim, case, folder / f"{case.id}.tape")
    return out


def _record(sim: Simulator, case: Case, tape: Path) -> tuple[Path, Run | Exception]:
    # The first attempt of the run gets a 429. Its retry-after-ms is 1: both Stainless SDKs
    # ignore a zero and fall back to half a second of backoff.
    sim.inject(Fault.rate_limit(retry_after=0.001))
    seen: list[dict[str, Any]] = []
    try:
        with seamtape.record(tape, name=case.id, upstream=getattr(sim, UPSTREAM[case.sdk])) as s:
            turns = AGENTS[case.sdk](s, case, seen)
        return tape, Run(s.run_id, s.digest, turns, seen, s.stats)
    except Exception as exc:  # reported by this case's tests, not by every case's
        return tape, exc


def _recorded(runs: dict[str, tuple[Path, Run | Exception]], case: Case) -> tuple[Path, Run]:
    tape, run = runs[case.id]
    if isinstance(run, Exception):
        raise run
    return tape, run


def _replay(tape: Path, case: Case) -> Run:
    seen: list[dict[str, Any]] = []
    with seamtape.replay(tape) as s:
        turns = AGENTS[case.sdk](s, case, seen)
    return Run(s.run_id, s.digest, turns, seen, s.stats)


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_replay_gives_the_sdk_the_same_run(runs: dict[str, Any], case: Case) -> None:
    tape, recorded = _recorded(runs, case)
    replayed = _replay(tape, case)

    assert recorded.stats == {"served": 0, "live": 3}
    assert replayed.stats == {"served": 3, "live": 0}
    assert [name for name, _ in recorded.turns[0].calls] == ["get_weather"]
    assert "get_weather" in recorded.turns[1].text  # the final answer quotes the tool result
    assert replayed.turns == recorded.turns
    assert replayed.digest == recorded.digest
    # The 429 and the SDK's own retry replay as the same two attempts, headers and all.
    assert [s["status"] for s in recorded.seen] == [429, 200, 200]
    assert replayed.seen == recorded.seen


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_request_ids_and_retry_headers_survive_on_the_tape(
    runs: dict[str, Any], case: Case
) -> None:
    tape, recorded = _recorded(runs, case)
    with seamtape.Tape(tape) as t:
        exchanges = t.exchanges(recorded.run_id)
    assert [ex.status for ex in exchanges] == [429, 200, 200]
    limited = dict((k.lower(), v) for k, v in exchanges[0].response_headers)
    assert limited["retry-after"] == "1" and limited["retry-after-ms"] == "1"
    assert recorded.seen[0]["retry-after-ms"] == "1"  # ...and the SDK saw them
    name = REQUEST_ID.get(case.sdk)
    if name is not None:  # Gemini sends no request id header; its id is in the body
        on_tape = [dict((k.lower(), v) for k, v in ex.response_headers)[name] for ex in exchanges]
        assert on_tape == [s[name] for s in recorded.seen]
        assert len(set(on_tape)) == 3 and all(on_tape)
        # The SDK's retry count, as it sent it: the first attempt, the retry, a new request.
        counts = [
            dict((k.lower(), v) for k, v in ex.request_headers)[RETRY_COUNT] for ex in exchanges
        ]
        assert counts == ["0", "1", "0"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_codecs_read_the_recorded_bytes_as_the_sdk_did(runs: dict[str, Any], case: Case) -> None:
    tape, recorded = _recorded(runs, case)
    with seamtape.Tape(tape) as t:
        exchanges = t.exchanges(recorded.run_id)
        steps = [
            wire.decode(
                ex.method,
                ex.url,
                ex.request_headers,
                ex.request_bytes(),
                ex.status,
                ex.response_headers,
                ex.response_bytes(),
            )
            for ex in exchanges
        ]
    assert steps[0].stop_reason == "error" and steps[0].status == 429
    for step, turn in zip(steps[1:], recorded.turns, strict=True):
        assert step.stream is case.stream
        assert step.text == turn.text
        assert [(c.name, c.arguments) for c in step.tool_calls] == turn.calls
        assert step.usage.output_tokens > 0 and step.cost_usd and step.cost_usd > 0
    assert [s.stop_reason for s in steps[1:]] == ["tool_use", "end_turn"]


EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in EXAMPLES.glob("*_agent.py")), ids=lambda n: n
)
def test_example_runs_offline(name: str, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as `python examples/<name>.py` would have it
    monkeypatch.setattr(sys, "argv", [f"{name}.py"])
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "digests match: True" in out
    assert "tools:  get_weather, find_hotel" in out
