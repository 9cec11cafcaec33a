"""A LangGraph agent on ChatAnthropic and ChatOpenAI: record, then replay in the same process.

python examples/frameworks/langgraph_agent.py

The graph is the one LangGraph's docs build: a model node with tools bound, a ``ToolNode``
(which runs the model's parallel tool calls concurrently), ``tools_condition`` between them,
and a retry policy on the model node. A last node asks both chat models for a second opinion
at once (``asyncio.gather``). The graph is streamed (``stream_mode="messages"``), so each
chat model streams its tokens. Both chat models keep their HTTP clients in a process-wide
cache: the replay reuses the clients the recording built, and they follow the replay.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import INSTRUCTIONS, QUESTION, record_then_replay
from _common import find_hotel as _find_hotel
from _common import get_weather as _get_weather
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import RetryPolicy

import seamtape


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return _get_weather(city)


@tool
def find_hotel(city: str, budget: int) -> str:
    """A hotel in a city under a nightly budget in euros."""
    return _find_hotel(city, budget)


TOOLS = [get_weather, find_hotel]


class TripState(MessagesState):
    reviews: list[str]


def chat_models(base_url: str, *, max_retries: int = 2) -> dict[str, BaseChatModel]:
    """Both chat models, pointed at one server (the simulator speaks both wire formats)."""
    return {
        "anthropic": ChatAnthropic(
            model="sim-claude",
            base_url=base_url,
            api_key="not-a-real-key",
            max_retries=max_retries,
        ),
        "openai": ChatOpenAI(
            model="sim-gpt",
            base_url=base_url.rstrip("/") + "/v1",
            api_key="not-a-real-key",
            max_retries=max_retries,
        ),
    }


def build_graph(
    models: dict[str, BaseChatModel],
    planner: str = "anthropic",
    *,
    instructions: str = INSTRUCTIONS,
    retry: RetryPolicy | None = None,
) -> Any:
    model_with_tools = models[planner].bind_tools(TOOLS)

    async def call_model(state: TripState) -> dict[str, Any]:
        reply = await model_with_tools.ainvoke([SystemMessage(instructions), *state["messages"]])
        return {"messages": [reply]}

    async def second_opinions(state: TripState) -> dict[str, Any]:
        plan = state["messages"][-1].content
        replies = await asyncio.gather(
            *(model.ainvoke(f"Review this plan in one line: {plan}") for model in models.values())
        )
        return {"reviews": [reply.content for reply in replies]}

    builder = StateGraph(TripState)
    builder.add_node("agent", call_model, retry_policy=retry or RetryPolicy())
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_node("review", second_opinions)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: "review"})
    builder.add_edge("tools", "agent")
    builder.add_edge("review", END)
    return builder.compile()


async def plan_trip(graph: Any, question: str = QUESTION) -> dict[str, Any]:
    """Stream the graph: tokens as the models produce them, then the final state."""
    streamed: list[str] = []
    state: dict[str, Any] = {}
    async for mode, chunk in graph.astream(
        {"messages": [("user", question)], "reviews": []}, stream_mode=["messages", "values"]
    ):
        if mode == "messages":
            message, meta = chunk
            if meta.get("langgraph_node") == "agent":
                streamed.append(message.text)
        else:
            state = chunk
    final = state["messages"][-1]
    tools = [c["name"] for m in state["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
    return {
        "answer": final.text,
        "tools": tools,
        "reviews": state["reviews"],
        "streamed": "".join(streamed),
    }


def agent_for(planner: str) -> Any:
    """The agent as seamtape runs it: the graph against ``session.upstream``."""

    async def agent(session: seamtape.Session) -> dict[str, Any]:
        return await plan_trip(build_graph(chat_models(session.upstream or ""), planner))

    agent.__name__ = agent.__qualname__ = f"langgraph_{planner}_agent"
    return agent


anthropic_agent = agent_for("anthropic")
openai_agent = agent_for("openai")


if __name__ == "__main__":
    # Both in one process: the second recording and both replays reuse the cached clients.
    for planner in ("anthropic", "openai"):
        print(f"-- planner: {planner}")
        record_then_replay(agent_for(planner), upstream="base_url", name=f"langgraph-{planner}")
