"""The simulator's defaults as a first recording meets them, through the real SDKs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import openai
import pytest
from google import genai
from google.genai import types

from seamtape import sim

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def first_openai_turn(server: sim.Simulator) -> Any:
    client = openai.OpenAI(api_key="unused", base_url=server.openai_base_url, max_retries=0)
    with client:
        reply = client.chat.completions.create(
            model="sim-gpt",
            messages=[{"role": "user", "content": "What is the weather in Lisbon?"}],
            tools=[WEATHER],  # type: ignore[list-item]
        )
    return reply.choices[0].message


def test_the_first_turn_calls_a_declared_tool_by_default() -> None:
    for seed in range(12):
        with sim.serve(sim.StochasticPolicy(seed=seed)) as server:
            message = first_openai_turn(server)
        assert message.tool_calls and message.tool_calls[0].function.name == "get_weather", seed


def test_first_tool_false_draws_the_first_turn_like_the_others() -> None:
    """The control: without the default, some first turns answer without a tool."""
    called = []
    for seed in range(12):
        spec = f"stochastic:seed={seed},first_tool=false"
        with sim.serve(sim.policy_from_spec(spec)) as server:
            called.append(bool(first_openai_turn(server).tool_calls))
    assert any(called) and not all(called)


def test_google_genai_upper_case_schema_types_get_real_arguments() -> None:
    """``types.Schema(type="OBJECT")`` is sent as "OBJECT"; the simulator reads it as object."""
    declaration = types.FunctionDeclaration(
        name="get_weather",
        description="Current weather for a city.",
        parameters=types.Schema(
            type="OBJECT",
            properties={"city": types.Schema(type="STRING"), "days": types.Schema(type="INTEGER")},
            required=["city", "days"],
        ),
    )
    with sim.serve() as server:
        client = genai.Client(
            api_key="unused", http_options=types.HttpOptions(base_url=server.gemini_base_url)
        )
        response = client.models.generate_content(
            model="sim-gemini",
            contents="What is the weather in Lisbon?",
            config=types.GenerateContentConfig(
                tools=[types.Tool(function_declarations=[declaration])]
            ),
        )
        sent = server.requests[0].body
    assert b'"OBJECT"' in sent  # what the SDK really sends
    (call,) = response.function_calls or []
    assert set(call.args or {}) == {"city", "days"}
    assert isinstance(call.args["city"], str) and isinstance(call.args["days"], int)


@pytest.mark.parametrize(
    "spec",
    [
        "stochastic",
        "stochastic:seed=3",
        "stochastic:seed=7,tools_plan=get_weather|find_hotel",
        "stochastic:temperature=0.5,tool_rate=0.2,max_tool_turns=1,first_tool=false",
        "stochastic:tools_plan=2",
    ],
)
def test_a_policy_spec_round_trips(spec: str) -> None:
    policy = sim.policy_from_spec(spec)
    assert sim.policy_spec(policy) == spec
    assert sim.policy_spec(sim.policy_from_spec(sim.policy_spec(policy))) == spec


def test_a_policy_built_in_code_has_no_spec_when_none_describes_it() -> None:
    assert sim.policy_spec(sim.ScriptedPolicy(["hi"])) is None


def test_bad_policy_options_are_usage_errors() -> None:
    for spec in ("stochastic:first_tool=maybe", "stochastic:tool_rate=2", "stochastic:nope=1"):
        with pytest.raises(ValueError):
            sim.policy_from_spec(spec)


def test_sim_help_lists_every_policy_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "seamtape", "sim", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "120", "NO_COLOR": "1", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    for option in ("seed=", "temperature=", "tools_plan=", "tool_rate=", "max_tool_turns=",
                   "first_tool="):  # fmt: skip
        assert option in result.stdout, option
    assert "the first turn always calls a declared tool" in result.stdout
