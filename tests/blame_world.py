"""A small world where the step that made a run fail is known by construction, for blame's tests.

The agent (``agent``) reads the pages of a briefing with a ``read`` tool, one per turn, and
answers which city hosts the summit; the oracle asks for Lisbon. Page 1 says Lisbon. Page
``POISONED`` is an environment fault: an unverified rumour that the summit moved to Paris.

The model (``SummitModel``, served by the simulator) carries its belief in each tool call's
``city`` argument and copies it forward. It is greedy on a conversation it sees for the first
time and samples on a repeat, like ``StochasticPolicy`` at temperature > 0: the k-th repeat
of a conversation gets sample index k. Greedy trusts the latest page; a sample reads the
rumour carefully and keeps its belief with probability ``CAREFUL``. Every sample also writes
its index into a ``draft`` argument, so a resampled step always differs from the recording,
and everything after it is a conversation nobody has seen: the tail is greedy.

So in the recorded run (all greedy) the model swallows the rumour at step ``CAUSE`` =
``POISONED + 1`` and answers Paris. Resampling step ``CAUSE`` repeats its conversation and
fixes the run with probability ``CAREFUL``. Resampling an earlier step only changes its
draft; the greedy tail reads the same rumour at step ``CAUSE`` and swallows it again: no flip.
Resampling a later step keeps the belief it inherits: no flip. (Planting the bad answer in
the recorded bytes instead, with ``fork(edit=...)``, would not do: any earlier fork re-asks
the model at step ``CAUSE`` live, the planted answer is gone, and every earlier step flips.)
"""

from __future__ import annotations

import threading
from typing import Any

import anthropic

from seamtape.sim.policies import Draws, answer, conversation_key
from seamtape.wire import Step, ToolCall

PAGES = (
    "The 2026 summit is held in Lisbon.",
    "Agenda: keynotes on the first morning.",
    "UNVERIFIED rumour: the summit moved to Paris.",
    "Catering is provided on both days.",
    "Badges are collected at the entrance.",
)
POISONED = 3  # the page with the rumour
CAUSE = POISONED + 1  # the step whose request carries it: the root cause
STEPS = len(PAGES) + 1  # one read per page, then the answer
CAREFUL = 0.97
CITIES = ("Lisbon", "Paris")

TOOLS = [
    {
        "name": "read",
        "description": "Read one page of the briefing.",
        "input_schema": {
            "type": "object",
            "properties": {
                "page": {"type": "integer"},
                "city": {"type": "string"},
                "draft": {"type": "integer"},
            },
            "required": ["page", "city", "draft"],
        },
    }
]


def agent(session: Any) -> dict[str, Any]:
    """Read every page, then answer; on the official anthropic SDK, calling session.upstream."""
    client = anthropic.Anthropic(
        api_key="sk-sim-not-a-real-key",
        base_url=session.upstream,
        http_client=session.httpx2_client(),
        max_retries=0,
    )
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Where is the summit?"}]
    for _ in range(STEPS + 2):
        reply = client.messages.create(
            model="sim-claude", max_tokens=256, tools=TOOLS, messages=messages
        )
        messages.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
        uses = [b for b in reply.content if b.type == "tool_use"]
        if not uses:
            return {"answer": "".join(b.text for b in reply.content if b.type == "text")}
        page = int(dict(uses[0].input).get("page", 0))
        text = PAGES[page - 1] if 1 <= page <= len(PAGES) else "No such page."
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": text}],
            }
        )
    return {"answer": None}


def oracle(result: Any) -> bool:
    return isinstance(result, dict) and "Lisbon" in str(result.get("answer"))


class SummitModel:
    """Greedy on a first sight, sampling on repeats; see the module docstring."""

    seed = 0

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def respond(self, step: Step) -> Step:
        key = conversation_key(step)
        with self._lock:
            index = self._seen.get(key, 0)
            self._seen[key] = index + 1
        turn = sum(1 for m in step.messages if m.role == "assistant")
        calls = [c for m in step.messages for c in m.tool_calls]
        belief = str(calls[-1].arguments.get("city", "")) if calls else ""
        latest = step.tool_results[-1].content if step.tool_results else ""
        stated = next((c for c in CITIES if c in latest), None)
        if stated:
            careful = index > 0 and Draws(self.seed, key, "careful", index).uniform() < CAREFUL
            if not (careful and "UNVERIFIED" in latest and belief):
                belief = stated
        rid = Draws(self.seed, key, "id", index).hex(24)
        if turn >= len(PAGES):
            return answer(
                step, text=f"The summit is in {belief or 'an unknown city'}.", response_id=rid
            )
        call = ToolCall(
            id="toolu_" + rid[:20],
            name="read",
            arguments={"page": turn + 1, "city": belief or "unknown", "draft": index},
        )
        return answer(step, tool_calls=[call], response_id=rid)
