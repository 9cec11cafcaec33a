"""What the framework examples share: the trip question, its two tools, the simulator's model,
and record → stop the simulator → replay, all through ``intercept=True``.

Each framework builds its own SDK clients; the agents here never see seamtape. The one line
each needs is ``seamtape.record(path, intercept=True)`` (and ``seamtape.replay`` likewise)
around the code that runs it.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import re
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import seamtape
from seamtape import sim
from seamtape.sim.policies import Draws, answer, conversation_key
from seamtape.wire import Step, ToolCall

QUESTION = "Plan a weekend in Lisbon: check the weather and find a hotel under 150 euros."
INSTRUCTIONS = "You plan trips. Use the tools, then answer in one short paragraph."
BUDGET = 150


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"{city}: 21°C and sunny"


def find_hotel(city: str, budget: int) -> str:
    """A hotel in a city under a nightly budget in euros."""
    return f"Hotel Miradouro in {city}, €{int(budget) - 15}/night"


def nightly_price(answer_text: str | None) -> int | None:
    """The hotel's nightly price quoted in an answer, if any."""
    found = re.search(r"€(\d+)/night", answer_text or "")
    return int(found.group(1)) if found else None


def within_budget(result: Any) -> bool:
    """The oracle: the trip's hotel fits the budget the user gave."""
    price = nightly_price(result.get("answer") if isinstance(result, dict) else None)
    return price is not None and price <= BUDGET


class TripModel:
    """The simulator's model: asks for both tools at once, then answers from their results.

    The first turn calls ``get_weather`` and ``find_hotel`` in one response (parallel tool
    calls); the next answers with the tool results quoted. A request without tools (a second
    opinion) gets a one-line review. With ``faulty=True`` the greedy first turn asks for a
    hotel at 500 euros (the planted fault); a repeat of a conversation (a resample) reads the
    budget right, as a model at temperature > 0 might.
    """

    def __init__(self, *, faulty: bool = False, seed: int = 7) -> None:
        self.faulty, self.seed = faulty, seed
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def respond(self, step: Step) -> Step:
        key = conversation_key(step)
        with self._lock:
            index = self._seen.get(key, 0) if self.faulty else 0
            self._seen[key] = index + 1
        rid = Draws(self.seed, key, "id", index).hex(24)
        if not step.tools:
            return answer(step, text="Looks like a sound plan.", response_id=rid)
        if not any(m.tool_results for m in step.messages) and not step.tool_results:
            budget = 500 if self.faulty and index == 0 else BUDGET
            calls = [
                ToolCall(id=f"call_{rid[:12]}_0", name="get_weather", arguments={"city": "Lisbon"}),
                ToolCall(
                    id=f"call_{rid[:12]}_1",
                    name="find_hotel",
                    arguments={"city": "Lisbon", "budget": budget},
                ),
            ]
            return answer(step, tool_calls=calls, response_id=rid)
        results = [r.content for m in step.messages for r in m.tool_results]
        results += [r.content for r in step.tool_results]
        seen = list(dict.fromkeys(results))  # each result once, in order
        return answer(step, text="Your weekend: " + " ".join(seen), response_id=rid)


Agent = Callable[[seamtape.Session], Any]


# One event loop for every run in this process, as an async application has. LangGraph's
# chat models cache their async HTTP clients for the process, and pooled connections belong
# to the loop that opened them: a fresh loop per run (asyncio.run) fails on the second run
# with "Event loop is closed", with or without seamtape.
LOOP = asyncio.Runner()


def run_agent(agent: Agent, session: seamtape.Session) -> Any:
    """``agent(session)``, awaited on this process's loop when it is async."""
    result = agent(session)
    if inspect.isawaitable(result):
        return LOOP.run(_await(result), context=contextvars.copy_context())
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def record_then_replay(agent: Agent, *, upstream: str, name: str) -> dict[str, Any]:
    """Record ``agent`` against the simulator, stop it, replay the run; print and compare.

    ``upstream`` names the simulator's base URL the framework's model wants, e.g.
    ``"openai_base_url"``; the agent reads it back as ``session.upstream``.
    """
    tape = Path(tempfile.mkdtemp(prefix="seamtape-example-")) / f"{name}.tape"
    with sim.serve(TripModel()) as server:
        base_url = getattr(server, upstream)
        with seamtape.record(tape, name=name, upstream=base_url, intercept=True) as recorded:
            recorded.result = run_agent(agent, recorded)
    # The simulator is stopped: from here on every answer comes from the tape.
    with seamtape.replay(tape, intercept=True) as replayed:
        replayed.result = run_agent(agent, replayed)

    same = replayed.digest == recorded.digest and replayed.result == recorded.result
    print(f"answer: {recorded.result['answer']}")
    print(f"tools:  {', '.join(recorded.result['tools'])}")
    print(f"recorded {recorded.stats['live']} exchanges into {tape}")
    print(f"replayed {replayed.stats['served']} from the tape, simulator stopped")
    print(f"digests match: {same} ({recorded.digest[:16]})")
    if not same:
        sys.exit(1)
    return recorded.result
