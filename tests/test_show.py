"""`seamtape show`: each exchange read through the wire codecs, and what they cannot read
listed anyway, as raw bytes with the codec's reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from rich.console import Console

import seamtape
from seamtape import wire
from seamtape.faces.terminal import show_tape, step_rows
from seamtape.sim import Fault, Simulator, StochasticPolicy, serve

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _ask(stream: bool = False) -> dict[str, Any]:
    return {
        "model": "sim-claude",
        "max_tokens": 100,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": "Weather in Lisbon?"}],
        "stream": stream,
    }


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with serve(StochasticPolicy(seed=2, tools_plan=["get_weather"])) as server:
        yield server


@pytest.fixture
def mixed_tape(sim: Simulator, origin: Any, tape_path: Path) -> Path:
    """One run: a model call, an unknown API, a malformed body, a cut stream, another call."""

    def proxy(request: httpx2.Request) -> httpx2.Response:
        # A misbehaving gateway: 200 and an HTML page where a Messages response should be.
        return httpx2.Response(200, html="<html>upstream timed out</html>")

    with seamtape.record(tape_path, name="mixed") as session, session.httpx2_client() as http:
        http.post(f"{sim.anthropic_base_url}/v1/messages", json=_ask())
        http.post(f"{origin.url}/json", json={"q": "not a model call"})
        with session.httpx2_client(transport=httpx2.MockTransport(proxy)) as gateway:
            gateway.post(f"{origin.url}/gateway/v1/messages", json=_ask())
        sim.inject(Fault.cut_stream(after_frames=2))
        with pytest.raises(httpx2.TransportError):
            with http.stream("POST", f"{sim.anthropic_base_url}/v1/messages", json=_ask(True)) as r:
                r.read()
        http.post(f"{sim.anthropic_base_url}/v1/messages", json=_ask())
    return tape_path


def _show(tape: Path, width: int = 220) -> str:
    console = Console(width=width, record=True, force_terminal=True, color_system=None)
    show_tape(tape, console=console)
    return console.export_text()


def test_each_step_is_decoded_and_each_unreadable_one_is_listed_raw(mixed_tape: Path) -> None:
    with seamtape.Tape(mixed_tape) as tape:
        rows = step_rows(tape, tape.run().id)
    assert [r.exchange.seq for r in rows] == [1, 2, 3, 4, 5]
    decoded = {r.exchange.seq: r.step for r in rows if r.step is not None}
    assert sorted(decoded) == [1, 5]
    assert all(
        step.provider == "anthropic" and step.model == "sim-claude" for step in decoded.values()
    )
    notes = {r.exchange.seq: r.note for r in rows if r.step is None}
    assert notes[2].startswith("no wire codec for POST")
    assert notes[3].startswith("anthropic.messages: response body is not valid JSON")
    assert "anthropic.messages" in notes[4] and "transport error: RemoteProtocolError" in notes[4]


def test_show_prints_provider_model_stop_tools_tokens_and_cost(mixed_tape: Path) -> None:
    with seamtape.Tape(mixed_tape) as tape:
        rows = step_rows(tape, tape.run().id)
    out = _show(mixed_tape)
    for row in rows:
        ex, step = row.exchange, row.step
        path = ex.url.split("127.0.0.1:", 1)[1].split("/", 1)[1]
        sizes = f"{row.request_size}/{row.response_size}"
        if step is None:
            cells = [str(ex.seq), "POST", f"/{path}", str(ex.status), "raw", sizes]
        else:
            assert step.tool_calls and step.usage.input_tokens > 0 and step.cost_usd
            tokens = f"{step.usage.input_tokens}/{step.usage.output_tokens}"
            cells = [str(ex.seq), "POST", f"/{path}", str(ex.status), "anthropic", "sim-claude"]
            cells += ["tool_use", "get_weather", tokens, f"{step.cost_usd:.6f}", sizes]
        pattern = r"^\s*" + r"\s+".join(map(re.escape, cells)) + r"\s+\d+\s*$"
        assert re.search(pattern, out, re.MULTILINE), (pattern, out)
        assert f"step {ex.seq}: raw bytes: {row.note}" in out if step is None else True
    steps = [r.step for r in rows if r.step is not None]
    tokens_in = sum(s.usage.input_tokens for s in steps)
    tokens_out = sum(s.usage.output_tokens for s in steps)
    cost = sum(wire.cost(s) or 0 for s in steps)
    assert f"5 exchanges (3 raw), 0 draws, tokens {tokens_in} in / {tokens_out} out" in out
    assert f"cost ${cost:.6f}" in out


def test_the_url_column_shows_the_path_and_the_title_the_host(
    sim: Simulator, mixed_tape: Path
) -> None:
    out = _show(mixed_tape)
    assert f"{sim.base_url}/v1/messages" not in out
    title = next(line for line in out.splitlines() if line.startswith("run "))
    assert sim.base_url in title


def test_piped_show_keeps_whole_lines(mixed_tape: Path) -> None:
    """Piped, rich assumes 80 columns; a step still prints on one line, path uncut."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    result = subprocess.run(
        [sys.executable, "-m", "seamtape", "show", str(mixed_tape)],
        env={**env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\s*3\s+POST\s+/gateway/v1/messages\s+200\s+raw\s", result.stdout, re.M)
    assert re.search(r"^\s*1\s+POST\s+/v1/messages\s+200\s+anthropic\s", result.stdout, re.M)


def test_an_exchange_that_never_got_a_response_is_listed(tape_path: Path) -> None:
    with serve() as gone:
        url = f"{gone.anthropic_base_url}/v1/messages"  # nothing listens here once stopped
    with seamtape.record(tape_path) as session, session.httpx2_client() as http:
        with pytest.raises(httpx2.ConnectError):
            http.post(url, content=json.dumps(_ask()))
    out = _show(tape_path)
    assert re.search(r"^\s*1\s+POST\s+/v1/messages\s+error: ConnectError\s+raw\s", out, re.M)
    assert "step 1: raw bytes: no response: ConnectError" in out
    assert "1 exchanges (1 raw), 0 draws, tokens 0 in / 0 out, cost $0.000000" in out
