"""Small recorded runs for the report and live UI tests: a tool-using chat on the simulator.

The agent speaks the Anthropic Messages wire format over httpx2 (no SDK, so it is fast),
asks about the weather, feeds each tool result back, and stops at the first text answer.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import seamtape

# Markup that must show as text, never run: one script element, one attribute breakout.
PROBE_SCRIPT = "<script>window.__xss = 'script'</script>"
PROBE_IMG = '"><img src=x onerror="window.__xss = \'img\'">'
PROBE_CLOSE = "</script><script>window.__xss = 'close'</script>"

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def chat_agent(
    question: str,
    *,
    gate: threading.Event | None = None,
    reached: threading.Event | None = None,
    tool_prefix: str = "",
) -> Any:
    """An agent(session) asking ``question``; with ``gate`` it waits there after step 1
    (which is on the tape by then), setting ``reached`` first."""

    def agent(session: Any) -> dict[str, Any]:
        messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
        with session.httpx2_client() as http:
            for turn in range(8):
                reply = http.post(
                    f"{session.upstream}/v1/messages",
                    json={
                        "model": "sim-claude",
                        "max_tokens": 200,
                        "tools": [WEATHER],
                        "messages": messages,
                    },
                ).json()
                if turn == 0 and reached is not None:
                    reached.set()
                if turn == 0 and gate is not None:
                    gate.wait(timeout=60)
                messages.append({"role": "assistant", "content": reply["content"]})
                uses = [b for b in reply["content"] if b["type"] == "tool_use"]
                if not uses:
                    text = "".join(b.get("text", "") for b in reply["content"])
                    return {"answer": text, "turns": turn + 1}
                messages.append(
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": u["id"],
                                "content": f"{tool_prefix}{u['input'].get('city', '?')}: 21°C",
                            }
                            for u in uses
                        ],
                    }
                )
        return {"answer": None, "turns": 8}

    return agent


def scripted(*turns: Any) -> Any:
    from seamtape.sim import ScriptedPolicy

    return ScriptedPolicy(dict(enumerate(turns)))


def record_chat(
    tape: Path, upstream: str, question: str, *, name: str = "chat", **kwargs: Any
) -> str:
    """Record one run of ``chat_agent(question)`` against ``upstream``; its run id."""
    agent = chat_agent(question, **kwargs)
    with seamtape.record(tape, name=name, upstream=upstream) as session:
        session.result = agent(session)
    return session.run_id


def weather_agent(session: Any) -> dict[str, Any]:
    """``chat_agent("Weather?")`` as a module-level agent, for ``--agent report_tapes:...``."""
    return chat_agent("Weather?")(session)
