"""`seamtape diff` and `seamtape textconv` on recordings made against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest

import seamtape
from seamtape import sim
from seamtape.lenses.textconv import textconv

EXIT_DIFFERENT, EXIT_BAD_INPUT = 1, 2

TOOLS = [
    {"name": name, "description": name, "input_schema": {"type": "object", "properties": {}}}
    for name in ("get_weather", "get_time", "find_hotel")
]
SUNNY, RAINY = "21°C and sunny", "12°C, raining hard all afternoon"


def day_agent(session: seamtape.Session, weather: str = SUNNY, retries: int = 0) -> str:
    """Calls whatever tools the model asks for until it answers."""
    with anthropic.Anthropic(
        api_key="unused",
        base_url=session.upstream,
        http_client=session.httpx2_client(),
        max_retries=retries,
    ) as client:
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Plan a day in Lisbon."}]
        for _ in range(6):
            reply = client.messages.create(
                model="sim-claude", max_tokens=200, tools=TOOLS, messages=messages
            )
            messages.append(
                {"role": "assistant", "content": [b.model_dump() for b in reply.content]}
            )
            uses = [b for b in reply.content if b.type == "tool_use"]
            if not uses:
                return "".join(b.text for b in reply.content if b.type == "text")
            results = [
                {
                    "type": "tool_result",
                    "tool_use_id": use.id,
                    "content": weather if use.name == "get_weather" else f"{use.name}: ok",
                }
                for use in uses
            ]
            messages.append({"role": "user", "content": results})
    return ""


def script(ids: str = "A", *, extra_step: bool = False) -> sim.ScriptedPolicy:
    """weather, (time), hotel, answer; ``ids`` makes the tool-call ids differ between runs."""
    turns: list[Any] = [[{"id": f"toolu_{ids}1", "name": "get_weather", "arguments": {}}]]
    if extra_step:
        turns.append([{"id": f"toolu_{ids}9", "name": "get_time", "arguments": {}}])
    turns.append([{"id": f"toolu_{ids}2", "name": "find_hotel", "arguments": {"budget": 120}}])
    turns.append("Walk by the river, then check in at Hotel Miradouro.")
    return sim.ScriptedPolicy(turns)


def record(
    path: Path,
    policy: sim.ScriptedPolicy,
    *,
    weather: str = SUNNY,
    seed: int = 0,
    name: str = "",
    faults: dict[int, sim.Fault] | None = None,
) -> seamtape.Session:
    with sim.serve(policy, seed=seed, faults=faults) as server:
        with seamtape.record(path, name=name or None, upstream=server.base_url) as session:
            session.result = day_agent(session, weather, retries=1 if faults else 0)
    return session


def cli(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamtape", *map(str, args)],
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def sunny_and_rainy(tmp_path: Path) -> tuple[Path, Path]:
    """Two recordings that differ from step 2 on: the weather tool's answer changed."""
    a, b = tmp_path / "a.tape", tmp_path / "b.tape"
    record(a, script(), weather=SUNNY)
    record(b, script(), weather=RAINY)
    return a, b


# -- diff ------------------------------------------------------------------------------


def test_diff_names_the_first_differing_step_and_its_json_path(
    sunny_and_rainy: tuple[Path, Path],
) -> None:
    a, b = sunny_and_rainy

    result = seamtape.diff(a, b)

    assert not result.equal
    assert [(p.a and p.a.seq, p.b and p.b.seq, p.kind) for p in result.pairs] == [
        (1, 1, "same"),
        (2, 2, "changed"),
        (3, 3, "changed"),
    ]
    first = result.first
    assert first is not None and first.a is not None and first.a.seq == 2
    change = first.changes[0]
    assert change.path == "$.request.messages[2].tool_results[0].content"
    assert (change.a, change.b) == (SUNNY, RAINY)
    assert result.tool_distance == 0  # the same tools, in the same order


def test_diff_cli_shows_the_divergence_and_exits_1(sunny_and_rainy: tuple[Path, Path]) -> None:
    a, b = sunny_and_rainy

    result = cli("diff", a, b)

    assert result.returncode == EXIT_DIFFERENT, result.stderr
    lines = result.stdout.splitlines()
    at = lines.index("first divergence: step 2 of A ↔ step 2 of B: changed (3 fields)")
    assert lines[at + 1 : at + 4] == [
        "  $.request.messages[2].tool_results[0].content",
        f"    A: {json.dumps(SUNNY, ensure_ascii=False)}",
        f"    B: {json.dumps(RAINY, ensure_ascii=False)}",
    ]
    assert "  $.response.usage.input_tokens" in lines  # a longer tool result, more tokens
    assert "tool-call edit distance: 0" in result.stdout

    as_json = json.loads(cli("diff", a, b, "--json").stdout)
    assert as_json["equal"] is False
    assert as_json["first_divergence"]["a"] == as_json["first_divergence"]["b"] == 2
    paths = [c["path"] for c in as_json["first_divergence"]["changes"]]
    assert paths[0] == "$.request.messages[2].tool_results[0].content"


def test_the_same_behaviour_recorded_twice_compares_equal(tmp_path: Path) -> None:
    """Different ids, request ids, ports and timestamps; the same steps."""
    a, b = tmp_path / "a.tape", tmp_path / "b.tape"
    first = record(a, script("A"), seed=1)
    second = record(b, script("B"), seed=2)
    assert first.digest != second.digest  # the bytes differ

    result = seamtape.diff(a, b)

    assert result.equal and result.first is None
    assert result.a.fingerprint == result.b.fingerprint
    assert all(p.kind == "same" for p in result.pairs)
    run = cli("diff", a, b)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "same behaviour" in run.stdout


def test_a_retried_step_is_inserted_and_the_rest_aligned_around_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tape", tmp_path / "b.tape"
    record(a, script())
    record(b, script(), faults={0: sim.Fault.rate_limit(retry_after=0)})  # the SDK retries

    result = seamtape.diff(a, b)

    assert [(p.a and p.a.seq, p.b and p.b.seq, p.kind) for p in result.pairs] == [
        (None, 1, "inserted"),
        (1, 2, "same"),
        (2, 3, "same"),
        (3, 4, "same"),
    ]
    assert result.first is not None and result.first.kind == "inserted"
    assert result.first.b is not None and result.first.b.answer == "error 429"
    backwards = seamtape.diff(b, a)
    assert backwards.first is not None and backwards.first.kind == "dropped"
    assert "step 1 of A was dropped" in backwards.to_text()


def test_the_same_request_answered_otherwise_is_changed_not_dropped(tmp_path: Path) -> None:
    """The model called another tool at step 2 (its request is identical in both runs), and
    the extra step that follows is the inserted one."""
    a, b = tmp_path / "a.tape", tmp_path / "b.tape"
    record(a, script())
    record(b, script(extra_step=True))

    result = seamtape.diff(a, b)

    assert [(p.a and p.a.seq, p.b and p.b.seq, p.kind) for p in result.pairs] == [
        (1, 1, "same"),
        (2, 2, "changed"),
        (None, 3, "inserted"),
        (3, 4, "changed"),
    ]
    assert result.first is not None and result.first.kind == "changed"
    assert "step 2 of A ↔ step 2 of B: the answer changed" in result.to_text()
    assert all(c.path.startswith("$.response") for c in result.first.changes)
    assert result.b.tools == ["get_weather", "get_time", "find_hotel"]
    assert result.tool_distance == 1


def test_a_fork_that_answers_step_1_without_a_tool_pairs_step_1(tmp_path: Path) -> None:
    """The case from the field: A calls a tool at step 1 then answers; the fork B answers at
    step 1. Both step-1 requests are identical: A1 pairs with B1 as changed, A2 is dropped."""
    tape = tmp_path / "a.tape"
    parent = record(tape, script())
    fork = seamtape.fork(
        tape,
        parent.run_id,
        step=1,
        agent=lambda s: day_agent(s, SUNNY),
        edit={"text": "Stay in.", "tool_calls": []},
    )

    result = seamtape.diff(tape, tape, run_a=parent.run_id, run_b=fork.run_id)

    assert [(p.a and p.a.seq, p.b and p.b.seq, p.kind) for p in result.pairs] == [
        (1, 1, "changed"),
        (2, None, "dropped"),
        (3, None, "dropped"),
    ]
    assert "first divergence: step 1 of A ↔ step 1 of B: the answer changed" in result.to_text()


def test_runs_of_one_tape_are_named_with_a_colon(tmp_path: Path) -> None:
    tape = tmp_path / "both.tape"
    record(tape, script(), name="baseline")
    record(tape, script(extra_step=True), name="candidate")

    result = cli("diff", f"{tape}:baseline", f"{tape}:candidate")

    assert result.returncode == EXIT_DIFFERENT, result.stderr
    assert "first divergence: step 2 of A ↔ step 2 of B: the answer changed" in result.stdout


def test_diff_of_what_does_not_exist_exits_2(sunny_and_rainy: tuple[Path, Path]) -> None:
    a, _ = sunny_and_rainy
    missing = cli("diff", a, a.with_name("missing.tape"))
    assert missing.returncode == EXIT_BAD_INPUT and "no such tape" in missing.stderr
    unknown = cli("diff", a, f"{a}:no-such-run")
    assert unknown.returncode == EXIT_BAD_INPUT and "no run 'no-such-run'" in unknown.stderr


# -- textconv --------------------------------------------------------------------------


def test_textconv_is_stable_and_free_of_volatile_values(tmp_path: Path) -> None:
    tape = tmp_path / "a.tape"
    record(tape, script("A"), seed=1, name="day")

    text = cli("textconv", tape).stdout

    assert text == cli("textconv", tape).stdout == textconv(tape)
    assert "-- step 3 · POST /v1/messages · 200 · anthropic.messages · sim-claude" in text
    assert 'answer: tool call find_hotel {"budget": 120}' in text
    assert f'"content": "{SUNNY}"' in text  # bodies, pretty-printed
    with seamtape.Tape(tape) as t:
        (run,) = t.runs()
        exchanges = t.exchanges(run.id)
    volatile = [run.id, str(run.created), str(int(run.created)), run.upstream, "toolu_A1"]
    volatile += [str(ex.started) for ex in exchanges] + [str(ex.ended) for ex in exchanges]
    volatile += [v for ex in exchanges for k, v in ex.response_headers if "request-id" in k]
    assert volatile and all(value and value not in text for value in volatile)


def test_textconv_of_the_same_behaviour_recorded_twice_is_the_same_text(tmp_path: Path) -> None:
    a, b = tmp_path / "a.tape", tmp_path / "b.tape"
    record(a, script("A"), seed=1, name="day")
    record(b, script("B"), seed=2, name="day")

    assert textconv(a) == textconv(b)
