"""Stream contracts: a cut stream and broken framing, on streams recorded from the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import seamtape
from seamtape import sim
from seamtape.lenses.lint import lint
from seamtape.lenses.lint._streams import stream_problems
from seamtape.tape import Exchange, Tape, blob_hash

REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "anthropic": (
        "/v1/messages",
        {"model": "sim-claude", "max_tokens": 64, "stream": True,
         "messages": [{"role": "user", "content": "Tell me about Lisbon."}]},
    ),
    "openai": (
        "/v1/chat/completions",
        {"model": "sim-gpt", "stream": True,
         "messages": [{"role": "user", "content": "Tell me about Lisbon."}]},
    ),
    "gemini": (
        "/v1beta/models/sim-gemini:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "Tell me about Lisbon."}]}]},
    ),
}  # fmt: skip
ANSWER = "Lisbon is a city of seven hills, trams and tiled facades by the river."


def record_stream(tmp_path: Path, provider: str, fault: sim.Fault | None = None) -> Path:
    tape = tmp_path / f"stream-{provider}-{fault is not None}.tape"
    path, body = REQUESTS[provider]
    with sim.serve(sim.ScriptedPolicy([ANSWER])) as simulator:
        if fault is not None:
            simulator.inject(fault)
        with seamtape.record(tape) as session, session.httpx2_client() as client:
            try:
                with client.stream("POST", simulator.base_url + path, json=body) as response:
                    for _ in response.iter_bytes():
                        pass
            except Exception as exc:  # the cut reaches the agent as a transport error
                assert "closed" in str(exc).lower() or "incomplete" in str(exc).lower() or exc
    return tape


@pytest.mark.parametrize("provider", ["anthropic", "openai", "gemini"])
def test_a_cut_stream_is_found_and_a_whole_one_is_not(tmp_path: Path, provider: str) -> None:
    whole = lint(record_stream(tmp_path, provider))
    assert whole.findings == []
    cut = lint(record_stream(tmp_path, provider, sim.Fault.cut_stream(after_frames=2)))
    rules = {f.rule: f for f in cut.findings}
    assert rules["stream-cut"].steps == (1,)
    assert rules["failure-mode"].data["mode"] == "truncated_output"


def _body(tape: Path) -> bytes:
    with Tape(tape) as opened:
        (exchange,) = opened.exchanges(opened.run().id)
        return exchange.response_bytes()


def _without(body: bytes, marker: bytes) -> bytes:
    """The stream with the first event containing ``marker`` taken out."""
    gap = b"\r\n\r\n" if b"\r\n\r\n" in body else b"\n\n"  # Gemini ends lines in CRLF
    events = body.split(gap)
    index = next(i for i, e in enumerate(events) if marker in e)
    return gap.join(events[:index] + events[index + 1 :])


def test_anthropic_block_boundaries(tmp_path: Path) -> None:
    body = _body(record_stream(tmp_path, "anthropic"))
    assert stream_problems("anthropic.messages", body) == []
    unclosed = stream_problems("anthropic.messages", _without(body, b"content_block_stop"))
    assert "block 0 is never closed" in unclosed
    unopened = stream_problems("anthropic.messages", _without(body, b"content_block_start"))
    assert any("not open" in p for p in unopened)
    assert "the stream does not end with message_stop" in stream_problems(
        "anthropic.messages", _without(body, b"message_stop")
    )


def test_openai_and_gemini_stream_ends(tmp_path: Path) -> None:
    openai = _body(record_stream(tmp_path, "openai"))
    assert stream_problems("openai.chat", openai) == []
    assert "the stream does not end with [DONE]" in stream_problems(
        "openai.chat", _without(openai, b"[DONE]")
    )
    gemini = _body(record_stream(tmp_path, "gemini"))
    assert stream_problems("gemini.generate", gemini) == []
    assert stream_problems("gemini.generate", _without(gemini, b"finishReason")) == [
        "the last chunk carries no finishReason"
    ]


def test_stream_boundaries_fires_on_a_tape_whose_stream_lost_a_block_stop(tmp_path: Path) -> None:
    """The recorded stream, written again to a new tape with one event taken out."""
    source = record_stream(tmp_path, "anthropic")
    broken = tmp_path / "broken.tape"
    with Tape(source) as opened:
        (exchange,) = opened.exchanges(opened.run().id)
        request, response = exchange.request_bytes(), exchange.response_bytes()
    edited = _without(response, b"content_block_stop")
    with Tape(broken, create=True) as tape:
        run = tape.create_run("edited")
        row = Exchange(
            **{**exchange.__dict__, "run": run, "_tape": None, "response_body": blob_hash(edited)}
        )
        tape.add_exchange(row, request, edited, [])
        tape.finish_run(run, status="complete", digest=None, result=None, has_result=False)
    findings = {f.rule: f for f in lint(broken).findings}
    assert findings["stream-boundaries"].message == "block 0 is never closed"
    assert "stream-boundaries" not in {f.rule for f in lint(source).findings}
