"""Policies: scripted turns, and the seeded stochastic policy that drives tool-using agents."""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import pytest

from seamtape.sim import (
    Policy,
    ScriptedPolicy,
    ScriptExhaustedError,
    StochasticPolicy,
    conversation_key,
    policy_from_spec,
)
from seamtape.wire import Message, Step, ToolCall, ToolResult, ToolSpec

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    schema={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
            "detailed": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["city", "unit", "days"],
    },
)
SEARCH = ToolSpec(
    name="search",
    schema={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


def ask(text: str, *, tools: list[ToolSpec] | None = None) -> Step:
    return Step(
        provider="anthropic",
        api="anthropic.messages",
        model="claude-test",
        messages=[Message(role="user", text=text)],
        tools=list(tools or []),
    )


def follow_up(step: Step, reply: Step, result: str, *, is_error: bool = False) -> Step:
    """The next request of an agent loop: the model's tool calls, then their results."""
    results = [ToolResult(call.id, result, is_error) for call in reply.tool_calls]
    messages = [
        *step.messages,
        Message(role="assistant", text=reply.text, tool_calls=list(reply.tool_calls)),
        Message(role="user", tool_results=results),
    ]
    return replace(step, messages=messages, tool_results=results)


def run_agent(policy: Policy, step: Step, tool_output: str = "sunny, 21C") -> list[Step]:
    replies = []
    for _ in range(20):
        reply = policy.respond(step)
        replies.append(reply)
        if not reply.tool_calls:
            return replies
        step = follow_up(step, reply, tool_output)
    raise AssertionError("the policy never gave a final answer")


def test_scripted_policy_serves_turns_in_order() -> None:
    policy = ScriptedPolicy([[{"name": "search", "arguments": {"query": "x"}}], "done"])
    first = policy.respond(ask("find x", tools=[SEARCH]))
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("search", {"query": "x"})]
    assert first.stop_reason == "tool_use"
    second = policy.respond(ask("anything"))
    assert (second.text, second.tool_calls, second.stop_reason) == ("done", [], "end_turn")
    with pytest.raises(ScriptExhaustedError, match="no turn for request 2"):
        policy.respond(ask("more"))


def test_scripted_policy_by_turn_replays_the_same_conversation() -> None:
    policy = ScriptedPolicy({0: [ToolCall("c1", "search", {"query": "q"})], 1: "answer"})
    step = ask("q", tools=[SEARCH])
    for _ in range(3):  # other runs in between do not shift the script
        assert policy.respond(step).tool_calls[0].id == "c1"
    reply = policy.respond(step)
    assert policy.respond(follow_up(step, reply, "found")).text == "answer"


def test_stochastic_policy_is_a_pure_function_of_the_conversation() -> None:
    step = ask("What is the weather in Paris?", tools=[WEATHER, SEARCH])
    first = StochasticPolicy(seed=7).respond(step)
    again = StochasticPolicy(seed=7).respond(step)
    assert first == again
    assert StochasticPolicy(seed=7).respond(step) == StochasticPolicy(seed=7).respond(step)
    assert first.response_id and first.usage.input_tokens > 0 and first.usage.output_tokens > 0


def test_stochastic_policy_drives_a_tool_loop_to_a_bounded_end() -> None:
    for seed in range(20):
        policy = StochasticPolicy(seed=seed, max_tool_turns=3)
        replies = run_agent(policy, ask("Weather in Oslo?", tools=[WEATHER, SEARCH]))
        assert len(replies) <= 4
        assert replies[-1].stop_reason == "end_turn" and replies[-1].text
        for reply in replies[:-1]:
            (call,) = reply.tool_calls
            spec = {"get_weather": WEATHER, "search": SEARCH}[call.name]
            jsonschema.validate(call.arguments, spec.schema)
            assert reply.stop_reason == "tool_use"


def test_tools_plan_fixes_the_tool_sequence() -> None:
    policy = StochasticPolicy(seed=1, tools_plan=["search", "get_weather"])
    replies = run_agent(policy, ask("plan", tools=[WEATHER, SEARCH]))
    assert [c.name for r in replies for c in r.tool_calls] == ["search", "get_weather"]
    counted = StochasticPolicy(seed=1, tools_plan=2)
    assert len(run_agent(counted, ask("plan", tools=[WEATHER, SEARCH]))) == 3


def test_no_tools_means_a_direct_answer_quoting_the_question() -> None:
    reply = StochasticPolicy().respond(ask("hello there"))
    assert reply.tool_calls == [] and "hello there" in reply.text


def test_a_changed_tool_result_changes_the_run() -> None:
    policy = StochasticPolicy(seed=3, tools_plan=1)
    step = ask("Weather in Rome?", tools=[WEATHER])
    reply = policy.respond(step)
    sunny = policy.respond(follow_up(step, reply, "sunny"))
    stormy = policy.respond(follow_up(step, reply, "storm warning", is_error=True))
    assert "sunny" in sunny.text and "storm warning" in stormy.text
    assert sunny.text != stormy.text

    # Without a plan, the tool result feeds the hash that picks the next action.
    free = StochasticPolicy(seed=3)
    paths = {
        tuple(len(r.tool_calls) for r in run_agent(free, follow_up(step, reply, f"result {i}")))
        for i in range(30)
    }
    assert len(paths) > 1


def test_resample_at_temperature_zero_is_greedy() -> None:
    policy = StochasticPolicy(seed=5, temperature=0.0)
    step = ask("Weather in Lima?", tools=[WEATHER, SEARCH])
    greedy = policy.respond(step)
    for index in range(1, 6):
        sample = policy.resample(step, index)
        assert (sample.text, [c.name for c in sample.tool_calls]) == (
            greedy.text,
            [c.name for c in greedy.tool_calls],
        )


def test_resample_at_positive_temperature_can_differ_and_is_reproducible() -> None:
    policy = StochasticPolicy(seed=5, temperature=1.0)
    step = ask("Weather in Lima?", tools=[WEATHER, SEARCH])
    samples = [policy.resample(step, i) for i in range(12)]
    assert samples[0] == StochasticPolicy(seed=5, temperature=1.0).respond(step)
    shapes = {(s.text, json.dumps([(c.name, c.arguments) for c in s.tool_calls])) for s in samples}
    assert len(shapes) > 1
    assert [policy.resample(step, i) for i in range(12)] == samples


def test_live_repeats_resample_only_above_temperature_zero() -> None:
    step = ask("Weather?", tools=[WEATHER, SEARCH])
    cold = StochasticPolicy(seed=2)
    assert len({cold.respond(step).response_id for _ in range(3)}) == 1
    warm = StochasticPolicy(seed=2, temperature=1.0)
    assert [warm.respond(step) for _ in range(3)] == [warm.resample(step, i) for i in range(3)]


def test_conversation_key_ignores_tool_call_ids() -> None:
    step = ask("q", tools=[SEARCH])
    reply = StochasticPolicy().respond(step)
    one = follow_up(step, reply, "r")
    renumbered = replace(reply, tool_calls=[replace(c, id="other") for c in reply.tool_calls])
    two = follow_up(step, renumbered, "r")
    assert conversation_key(one) == conversation_key(two)
    assert conversation_key(one) != conversation_key(follow_up(step, reply, "r2"))


def test_policy_from_spec(tmp_path) -> None:
    policy = policy_from_spec("stochastic:seed=4,temperature=0.5,tools_plan=search|get_weather")
    assert isinstance(policy, StochasticPolicy)
    assert (policy.seed, policy.temperature, policy.tools_plan) == (
        4,
        0.5,
        ("search", "get_weather"),
    )
    assert isinstance(policy_from_spec(None), StochasticPolicy)
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": ["hi"], "by_turn": True}))
    scripted = policy_from_spec(f"scripted:{script}")
    assert isinstance(scripted, ScriptedPolicy) and scripted.by_turn
    with pytest.raises(ValueError, match="unknown policy"):
        policy_from_spec("llm")
    with pytest.raises(ValueError, match="unknown stochastic option"):
        policy_from_spec("stochastic:top_p=1")
