"""An OpenAI Agents SDK agent, on the Responses and the Chat Completions model: record, replay.

python examples/frameworks/openai_agents_agent.py

Written as the SDK's docs write one for a custom endpoint: an ``AsyncOpenAI`` client, an
``Agent`` with ``@function_tool`` tools (the model's parallel tool calls run concurrently),
runner-managed retries in ``ModelSettings``, the run streamed with ``Runner.run_streamed``,
and two reviewer agents run at once with ``asyncio.gather``. Tracing is disabled, as the
docs advise for a server that is not OpenAI's: the SDK would otherwise post traces to
OpenAI's trace-ingest endpoint (seamtape never records those, and answers them itself
under replay; see the README).
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import INSTRUCTIONS, QUESTION, record_then_replay
from _common import find_hotel as _find_hotel
from _common import get_weather as _get_weather
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.retry import ModelRetrySettings, retry_policies
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent

import seamtape

set_tracing_disabled(disabled=True)


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return _get_weather(city)


@function_tool
def find_hotel(city: str, budget: int) -> str:
    """A hotel in a city under a nightly budget in euros."""
    return _find_hotel(city, budget)


RETRIES = ModelSettings(
    retry=ModelRetrySettings(
        max_retries=2,
        backoff={"initial_delay": 0.01, "jitter": False},
        policy=retry_policies.provider_suggested(),
    )
)


def build_agents(
    base_url: str,
    api: str = "responses",
    *,
    instructions: str = INSTRUCTIONS,
    client: AsyncOpenAI | None = None,
) -> tuple[Agent, list[Agent]]:
    """The planner and two reviewers on one client; ``api`` picks the model class."""
    if client is None:
        client = AsyncOpenAI(base_url=base_url, api_key="not-a-real-key", max_retries=0)
    model_class = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
    model = model_class(model="sim-gpt", openai_client=client)
    planner = Agent(
        name="Trip planner",
        instructions=instructions,
        model=model,
        model_settings=RETRIES,
        tools=[get_weather, find_hotel],
    )
    reviewers = [
        Agent(name=f"Reviewer {n}", instructions="Review the plan in one line.", model=model)
        for n in (1, 2)
    ]
    return planner, reviewers


async def plan_trip(planner: Agent, reviewers: list[Agent], question: str = QUESTION) -> dict:
    result = Runner.run_streamed(planner, input=question)
    streamed = []
    async for event in result.stream_events():
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
            streamed.append(event.data.delta)
    tools = [item.raw_item.name for item in result.new_items if item.type == "tool_call_item"]  # type: ignore[union-attr]
    plan = str(result.final_output)
    reviews = await asyncio.gather(*(Runner.run(r, f"The plan: {plan}") for r in reviewers))
    return {
        "answer": plan,
        "tools": tools,
        "reviews": [str(r.final_output) for r in reviews],
        "streamed": "".join(streamed),
    }


def agent_for(api: str) -> Any:
    """The agent as seamtape runs it: the SDK against ``session.upstream``."""

    async def agent(session: seamtape.Session) -> dict[str, Any]:
        return await plan_trip(*build_agents(session.upstream or "", api))

    agent.__name__ = agent.__qualname__ = f"openai_agents_{api}_agent"
    return agent


responses_agent = agent_for("responses")
chat_completions_agent = agent_for("chat_completions")


if __name__ == "__main__":
    for api in ("responses", "chat_completions"):
        print(f"-- model: {api}")
        record_then_replay(agent_for(api), upstream="openai_base_url", name=f"agents-{api}")
