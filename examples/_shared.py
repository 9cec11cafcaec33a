"""What every example shares: a question, two tools, and record → stop the simulator → replay.

Each example is one agent on one official SDK. ``record_then_replay`` runs it against
seamtape's simulator on 127.0.0.1, stops the simulator, and runs it again from the tape alone:
no network, no key. The agent reads its base URL from ``session.upstream`` either way.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import seamtape
from seamtape import sim

QUESTION = "Plan a weekend in Lisbon: check the weather and find a hotel under 150 euros."
MAX_TURNS = 8

# The tools, as JSON Schema; each example wraps them in its SDK's own tool format.
TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "name": "find_hotel",
        "description": "A hotel in a city under a nightly budget in euros.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "budget": {"type": "integer"}},
            "required": ["city", "budget"],
        },
    },
]


def run_tool(name: str, args: dict[str, Any]) -> str:
    """The tools themselves: deterministic, so a replay computes the same results."""
    city = str(args.get("city", "Lisbon"))
    if name == "get_weather":
        return f"{city}: 21°C and sunny"
    if name == "find_hotel":
        return f"Hotel Miradouro in {city}, €{int(args.get('budget', 150)) - 15}/night"
    return f"unknown tool {name}"


Agent = Callable[[seamtape.Session], Any]


def record_then_replay(agent: Agent, *, upstream: str, name: str) -> dict[str, Any]:
    """Record ``agent`` against the simulator, stop it, replay the run; print and compare.

    ``upstream`` names the simulator's base URL for this SDK, e.g. ``"anthropic_base_url"``.
    """
    tape = Path(tempfile.mkdtemp(prefix="seamtape-example-")) / f"{name}.tape"
    policy = sim.StochasticPolicy(seed=7, tools_plan=["get_weather", "find_hotel"])
    with sim.serve(policy) as server:
        with seamtape.record(tape, name=name, upstream=getattr(server, upstream)) as recorded:
            recorded.result = _run(agent, recorded)
    # The simulator is stopped: from here on every answer comes from the tape.
    with seamtape.replay(tape) as replayed:
        replayed.result = _run(agent, replayed)

    same = replayed.digest == recorded.digest and replayed.result == recorded.result
    print(f"answer: {recorded.result['answer']}")
    print(f"tools:  {', '.join(recorded.result['tools'])}")
    print(f"recorded {recorded.stats['live']} exchanges into {tape}")
    print(f"replayed {replayed.stats['served']} from the tape, simulator stopped")
    print(f"digests match: {same} ({recorded.digest[:16]})")
    if not same:
        sys.exit(1)
    return recorded.result


def _run(agent: Agent, session: seamtape.Session) -> Any:
    if inspect.iscoroutinefunction(agent):
        return asyncio.run(agent(session))
    return agent(session)
