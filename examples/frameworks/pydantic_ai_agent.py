"""A pydantic-ai agent on its OpenAI and Anthropic models: record, then replay.

python examples/frameworks/pydantic_ai_agent.py

Written as pydantic-ai's docs write one: a model with its provider pointed at a base URL, an
``Agent`` with plain tools (the model's parallel tool calls run concurrently), the run
streamed with ``run_stream``, and two reviewer agents (one per model) run at once with
``asyncio.gather``. ``ModelSettings(max_retries=...)`` sets how often a 429 is retried.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import INSTRUCTIONS, QUESTION, record_then_replay
from _common import find_hotel as _find_hotel
from _common import get_weather as _get_weather
from pydantic_ai import Agent
from pydantic_ai.messages import ToolCallPart
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

import seamtape


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return _get_weather(city)


def find_hotel(city: str, budget: int) -> str:
    """A hotel in a city under a nightly budget in euros."""
    return _find_hotel(city, budget)


def models(base_url: str) -> dict[str, Model]:
    """Both models, pointed at one server (the simulator speaks both wire formats)."""
    return {
        "openai": OpenAIChatModel(
            "sim-gpt",
            provider=OpenAIProvider(
                base_url=base_url.rstrip("/") + "/v1", api_key="not-a-real-key"
            ),
        ),
        "anthropic": AnthropicModel(
            "sim-claude", provider=AnthropicProvider(base_url=base_url, api_key="not-a-real-key")
        ),
    }


def build_agents(
    chosen: dict[str, Model], planner: str = "openai", *, instructions: str = INSTRUCTIONS
) -> tuple[Agent, list[Agent]]:
    agent = Agent(
        chosen[planner],
        instructions=instructions,
        tools=[get_weather, find_hotel],
        model_settings={"max_retries": 2},  # pydantic-ai hands this to the SDK's retry loop
    )
    reviewers = [
        Agent(model, instructions="Review the plan in one line.") for model in chosen.values()
    ]
    return agent, reviewers


async def plan_trip(agent: Agent, reviewers: list[Agent], question: str = QUESTION) -> dict:
    async with agent.run_stream(question) as result:
        streamed = [delta async for delta in result.stream_text(delta=True)]
        plan = await result.get_output()
        messages = result.all_messages()
    tools = [p.tool_name for m in messages for p in m.parts if isinstance(p, ToolCallPart)]
    reviews = await asyncio.gather(*(r.run(f"The plan: {plan}") for r in reviewers))
    return {
        "answer": plan,
        "tools": tools,
        "reviews": [r.output for r in reviews],
        "streamed": "".join(streamed),
    }


def agent_for(planner: str) -> Any:
    """The agent as seamtape runs it: pydantic-ai against ``session.upstream``."""

    async def agent(session: seamtape.Session) -> dict[str, Any]:
        return await plan_trip(*build_agents(models(session.upstream or ""), planner))

    agent.__name__ = agent.__qualname__ = f"pydantic_ai_{planner}_agent"
    return agent


openai_agent = agent_for("openai")
anthropic_agent = agent_for("anthropic")


if __name__ == "__main__":
    for planner in ("openai", "anthropic"):
        print(f"-- planner: {planner}")
        record_then_replay(agent_for(planner), upstream="base_url", name=f"pydantic-ai-{planner}")
