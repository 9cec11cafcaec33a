"""Agents on frameworks (LangGraph, the OpenAI Agents SDK, pydantic-ai), on the real packages.

Each agent is an example in ``examples/frameworks/``: it builds its own clients and never sees
seamtape; ``intercept=True`` is the one line. For each: record against the simulator
(streamed, with parallel tool calls and parallel model calls), replay with the simulator
stopped and the network blocked, fork and blame a planted fault with the framework running
the tail, a changed prompt diverges loudly, and the framework's own retries are recorded and
replayed. Cases run in one process, so every replay meets the clients the frameworks cached
while recording.
"""

from __future__ import annotations

import json
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("agents")
pytest.importorskip("pydantic_ai")

import seamtape
from seamtape import DivergenceError, sim
from seamtape._agents import run_agent
from seamtape._network import blocking
from seamtape._steps import steps_of

EXAMPLES = Path(__file__).parent.parent / "examples" / "frameworks"
sys.path.insert(0, str(EXAMPLES))  # as `python examples/frameworks/<name>.py` has it

import _common  # noqa: E402
import langgraph_agent  # noqa: E402
import openai_agents_agent  # noqa: E402
import pydantic_ai_agent  # noqa: E402
from _common import TripModel, within_budget  # noqa: E402
from langgraph.types import RetryPolicy  # noqa: E402

pytest_plugins = ["pytester"]

CHANGED = "You plan trips for a travel agency. Use the tools, then answer in one short paragraph."
FAST_RETRY = RetryPolicy(initial_interval=0.01, jitter=False)


@dataclass(frozen=True)
class Case:
    framework: str
    variant: str
    upstream: str  # the simulator's base URL the framework's model wants
    build: Callable[..., Callable[[seamtape.Session], Any]]  # (instructions=...) -> agent

    @property
    def id(self) -> str:
        return f"{self.framework}-{self.variant}"


def _langgraph(planner: str) -> Callable[..., Any]:
    def build(instructions: str = _common.INSTRUCTIONS) -> Callable[[seamtape.Session], Any]:
        async def agent(session: seamtape.Session) -> dict[str, Any]:
            models = langgraph_agent.chat_models(session.upstream or "", max_retries=1)
            graph = langgraph_agent.build_graph(
                models, planner, instructions=instructions, retry=FAST_RETRY
            )
            return await langgraph_agent.plan_trip(graph)

        return agent

    return build


def _openai_agents(api: str) -> Callable[..., Any]:
    def build(instructions: str = _common.INSTRUCTIONS) -> Callable[[seamtape.Session], Any]:
        async def agent(session: seamtape.Session) -> dict[str, Any]:
            agents = openai_agents_agent.build_agents(
                session.upstream or "", api, instructions=instructions
            )
            return await openai_agents_agent.plan_trip(*agents)

        return agent

    return build


def _pydantic_ai(planner: str) -> Callable[..., Any]:
    def build(instructions: str = _common.INSTRUCTIONS) -> Callable[[seamtape.Session], Any]:
        async def agent(session: seamtape.Session) -> dict[str, Any]:
            models = pydantic_ai_agent.models(session.upstream or "")
            agents = pydantic_ai_agent.build_agents(models, planner, instructions=instructions)
            return await pydantic_ai_agent.plan_trip(*agents)

        return agent

    return build


CASES = [
    Case("langgraph", "anthropic", "base_url", _langgraph("anthropic")),
    Case("langgraph", "openai", "base_url", _langgraph("openai")),
    Case("openai-agents", "responses", "openai_base_url", _openai_agents("responses")),
    Case("openai-agents", "chat", "openai_base_url", _openai_agents("chat_completions")),
    Case("pydantic-ai", "openai", "base_url", _pydantic_ai("openai")),
    Case("pydantic-ai", "anthropic", "base_url", _pydantic_ai("anthropic")),
]
ONE_EACH = [CASES[0], CASES[2], CASES[4]]


def run(agent: Callable[[seamtape.Session], Any], session: seamtape.Session) -> Any:
    # On the event loop seamtape's fork and blame run agents on: LangGraph's cached async
    # clients hold connections bound to the loop that opened them.
    return run_agent(session, agent)


def record(path: Path, case: Case, server: sim.Simulator, **build: Any) -> seamtape.Session:
    with seamtape.record(path, upstream=getattr(server, case.upstream), intercept=True) as rec:
        run(case.build(**build), rec)
    return rec


def replay_offline(path: Path, case: Case, **build: Any) -> seamtape.Session:
    """Replay with nothing listening and every internet socket refused."""
    return replay_offline_with(path, case.build(**build))


def replay_offline_with(path: Path, agent: Callable[[seamtape.Session], Any]) -> seamtape.Session:
    with blocking(), seamtape.replay(path, intercept=True) as rep:
        run(agent, rep)
    return rep


def steps(path: Path, run_id: str) -> list[Any]:
    with seamtape.Tape(path) as tape:
        return steps_of(tape, run_id)


# -- 1, 2, 5, 6: record streamed, replay offline in the same process --------------------------


def test_every_framework_records_then_replays_bit_exact_in_the_same_process(
    tmp_path: Path,
) -> None:
    """All six recorded against one simulator, which is then stopped; every replay reuses
    whatever clients its framework cached while recording (LangGraph's chat models keep one
    per base URL), and must reach neither the simulator nor the network."""
    from langchain_anthropic import _client_utils as anthropic_cache

    hits_before = anthropic_cache._get_default_async_httpx_client.cache_info().hits
    recorded: dict[str, seamtape.Session] = {}
    with sim.serve(TripModel()) as server:
        for case in CASES:
            recorded[case.id] = record(tmp_path / f"{case.id}.tape", case, server)
    for case in CASES:
        rec = recorded[case.id]
        rep = replay_offline(tmp_path / f"{case.id}.tape", case)
        assert rep.result == rec.result, case.id
        assert rep.digest == rec.digest, case.id
        assert rep.stats == {"served": rec.stats["live"], "live": 0}, case.id
    # The LangGraph replays went through the client the recording cached: it followed them.
    assert anthropic_cache._get_default_async_httpx_client.cache_info().hits > hits_before

    for case in CASES:
        result = recorded[case.id].result
        assert result["tools"] == ["get_weather", "find_hotel"], case.id
        assert within_budget(result), case.id
        assert result["streamed"] == result["answer"], case.id  # assembled from the stream
        assert len(result["reviews"]) == 2, case.id
        planned = steps(tmp_path / f"{case.id}.tape", recorded[case.id].run_id)
        assert len(planned) == 4, case.id  # plan (two tool calls), answer, two reviews
        first, second = planned[0], planned[1]
        assert first.stream and second.stream, case.id
        assert [c.name for c in first.tool_calls] == ["get_weather", "find_hotel"], case.id
        assert {r.content for r in second.tool_results} >= {
            "Lisbon: 21°C and sunny",
            "Hotel Miradouro in Lisbon, €135/night",
        }, case.id


@pytest.mark.parametrize("case", ONE_EACH, ids=lambda c: c.id)
def test_the_frameworks_own_retries_are_recorded_and_replayed(case: Case, tmp_path: Path) -> None:
    """Two 429s on the first call. LangGraph: the chat model's SDK retries once, then the
    node's RetryPolicy runs it again; the Agents SDK (its client set to no retries): the
    runner-managed retries; pydantic-ai: its ``max_retries`` model setting. Each attempt is
    its own exchange, and the replay serves them all."""
    path = tmp_path / "retried.tape"
    with sim.serve(TripModel()) as server:
        server.inject(sim.Fault.rate_limit(retry_after=0), times=2)
        rec = record(path, case, server)
    assert [s.status for s in steps(path, rec.run_id)] == [429, 429, 200, 200, 200, 200]
    rep = replay_offline(path, case)
    assert rep.result == rec.result and rep.digest == rec.digest


# -- 4: a changed prompt diverges loudly, whatever the framework does with the error --------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_changed_prompt_diverges_with_step_and_path(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "run.tape"
    with sim.serve(TripModel()) as server:
        record(path, case, server)
    with pytest.raises(DivergenceError) as raised:
        replay_offline(path, case, instructions=CHANGED)
    error = raised.value
    assert error.step == 1
    assert error.reason == "the request body differs from the recording"
    assert error.path.startswith("$.")
    assert "travel agency" in json.dumps(error.new)
    assert "travel agency" not in json.dumps(error.recorded)


# -- 3: fork at a step, blame a planted fault, the framework running the tail --------------


@pytest.mark.parametrize("case", ONE_EACH, ids=lambda c: c.id)
def test_fork_fixes_the_planted_fault_and_blame_names_its_step(case: Case, tmp_path: Path) -> None:
    """The simulator's model asks for a 500-euro hotel at step 1 (greedy); a resample reads
    the budget right. Forking step 1 with the budget edited, or resampling it, fixes the
    run; resampling the answer at step 2 does not."""
    path = tmp_path / "faulty.tape"
    agent = case.build()
    with sim.serve(TripModel(faulty=True)) as server:
        rec = record(path, case, server)
        assert not within_budget(rec.result)
        [weather, hotel] = steps(path, rec.run_id)[0].tool_calls
        assert hotel.arguments["budget"] == 500

        fixed = {"id": hotel.id, "name": hotel.name, "arguments": {"city": "Lisbon", "budget": 150}}
        weather_call = {"id": weather.id, "name": weather.name, "arguments": weather.arguments}
        forked = seamtape.fork(
            path, rec.run_id, step=1, agent=agent, edit={"tool_calls": [weather_call, fixed]}
        )
        assert within_budget(forked.result)
        assert forked.live == 3  # the framework ran the tail live: answer, two reviews
        with seamtape.Tape(path) as tape:
            assert tape.run(forked.run_id).parent == rec.run_id

        # Later in the run: the framework's first request is served from the tape, free.
        planned = "Your weekend: Hotel Miradouro in Lisbon, €120/night"
        later = seamtape.fork(path, rec.run_id, step=2, agent=agent, edit={"text": planned})
        assert (later.served, later.live) == (1, 2)
        assert later.result["answer"] == planned and within_budget(later.result)

        report = seamtape.blame(
            path,
            rec.run_id,
            agent=agent,
            oracle=within_budget,
            steps=[1, 2],
            min_trials=2,
            max_trials=2,
            workers=1,
        )
    assert report.parent_success is False
    assert report.top(1) == [1]
    assert report.step(1).flips == report.step(1).trials == 2
    assert report.step(2).trials == 2 and report.step(2).flips == 0


# -- the examples themselves: one command each, offline ----------------------------------------


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in EXAMPLES.glob("*_agent.py")), ids=lambda n: n
)
def test_example_runs_offline(name: str, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [f"{name}.py"])
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("digests match: True") == 2
    assert out.count("tools:  get_weather, find_hotel") == 2


# -- 6: the Agents SDK's trace exporter ------------------------------------------------------


def test_agents_sdk_traces_are_neither_recorded_nor_sent_under_replay(
    origin, tmp_path: Path
) -> None:
    """Tracing on, as it is by default, with the SDK's own exporter posting to a sink on
    127.0.0.1 instead of OpenAI's. Recording, the traces go out to the sink as they would
    without seamtape, and none lands on the tape; replaying, none is sent at all."""
    from agents import flush_traces, set_trace_processors, set_tracing_disabled
    from agents.tracing.processors import BackendSpanExporter, BatchTraceProcessor

    case, path = CASES[2], tmp_path / "traced.tape"
    set_tracing_disabled(False)
    processor = None
    try:
        with sim.serve(TripModel()) as server:
            with seamtape.record(path, upstream=server.openai_base_url, intercept=True) as rec:
                # Built inside the block, as the default exporter is on first use.
                exporter = BackendSpanExporter(
                    api_key="sk-not-a-real-key", endpoint=f"{origin.url}/v1/traces/ingest"
                )
                processor = BatchTraceProcessor(exporter)
                set_trace_processors([processor])
                run(case.build(), rec)
                flush_traces()
        sent = origin.count
        assert sent >= 1  # the traces reached the sink
        with seamtape.Tape(path) as tape:
            urls = [ex.url for ex in tape.exchanges(rec.run_id)]
        assert len(urls) == 4 and not any("/traces/" in url for url in urls)

        # Not blocking the network here: a trace sent under replay would reach the sink.
        with seamtape.replay(path, intercept=True) as rep:
            run(case.build(), rep)
            flush_traces()
        assert origin.count == sent
        assert rep.digest == rec.digest and rep.result == rec.result
    finally:
        set_trace_processors([])
        if processor is not None:
            processor.shutdown(timeout=1)
        set_tracing_disabled(True)


# -- where intercept cannot reach: a client built before any block ---------------------------


def test_a_client_built_before_any_block_joins_with_seamtape_follow(tmp_path: Path) -> None:
    """The Agents SDK's docs build the client at import time (``set_default_openai_client``):
    intercept never sees it being built. ``seamtape.follow(client)`` is the one line."""
    from openai import AsyncOpenAI

    path = tmp_path / "followed.tape"
    with sim.serve(TripModel()) as server:
        built_early = AsyncOpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)
        unfollowed = AsyncOpenAI(base_url=server.openai_base_url, api_key="x", max_retries=0)
        assert seamtape.follow(built_early) is built_early

        def agent_on(client: AsyncOpenAI) -> Callable[[seamtape.Session], Any]:
            async def agent(session: seamtape.Session) -> dict[str, Any]:
                built = openai_agents_agent.build_agents("", "chat_completions", client=client)
                return await openai_agents_agent.plan_trip(*built)

            return agent

        with seamtape.record(tmp_path / "missed.tape", intercept=True) as missed:
            run(agent_on(unfollowed), missed)
        assert missed.stats["live"] == 0  # the limit: nothing reached the tape

        with seamtape.record(path, intercept=True) as rec:
            run(agent_on(built_early), rec)
        assert rec.stats["live"] == 4
    rep = replay_offline_with(path, agent_on(built_early))
    assert rep.result == rec.result and rep.digest == rec.digest


# -- 1, 2, 4 through the pytest plugin's marker ------------------------------------------------

PLUGIN_CONFTEST = """
import pytest
from _common import TripModel
from seamtape import sim

@pytest.fixture
def tape_upstream():
    with sim.serve(TripModel()) as server:
        yield server.base_url
"""

PLUGIN_TEST = """
import asyncio, os
import pytest
import pydantic_ai_agent as trip

@pytest.mark.tape(intercept=True)
def test_trip(tape):
    instructions = os.environ.get("TRIP_INSTRUCTIONS", trip.INSTRUCTIONS)
    agents = trip.build_agents(trip.models(tape.upstream), instructions=instructions)
    tape.result = asyncio.run(trip.plan_trip(*agents))
    assert tape.result["tools"] == ["get_weather", "find_hotel"]
"""


def test_the_plugins_marker_records_and_replays_a_framework_agent(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``@pytest.mark.tape(intercept=True)``: recorded once, replayed with --block-network,
    and a changed prompt fails the test with the step and the JSON path."""
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")
    monkeypatch.delenv("TRIP_INSTRUCTIONS", raising=False)
    pytester.makeconftest(PLUGIN_CONFTEST)
    pytester.makepyfile(test_trip=PLUGIN_TEST)
    pytester.runpytest("--tape-mode=once").assert_outcomes(passed=1)
    tape = pytester.path / "tests" / "tapes" / "test_trip" / "test_trip.tape"
    with seamtape.Tape(tape) as t:
        [recorded] = t.runs()
    assert recorded.exchanges == 4

    pytester.runpytest("--block-network").assert_outcomes(passed=1)

    monkeypatch.setenv("TRIP_INSTRUCTIONS", CHANGED)
    result = pytester.runpytest("--block-network")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*divergence in run *, step 1: the request body differs from the recording",
            "*at $.messages[[]0[]].content:",
        ]
    )


def test_seamtape_record_and_replay_commands_intercept_a_framework_agent(tmp_path: Path) -> None:
    """The library calls behind ``seamtape record/replay --agent pkg.mod:fn`` intercept, as
    fork and blame do: the example's agent needs nothing more."""
    from seamtape._agents import record_agent, replay_agent

    path = tmp_path / "cli.tape"
    with sim.serve(TripModel()) as server:
        recorded = record_agent(path, langgraph_agent.anthropic_agent, upstream=server.base_url)
    with blocking():
        replayed = replay_agent(path, langgraph_agent.anthropic_agent)
    assert recorded.live == 4
    assert replayed.bit_exact and replayed.served == 4
    assert replayed.result == recorded.result


@pytest.mark.parametrize("planner", ["anthropic", "openai"])
def test_a_sync_langgraph_graph_replays_through_the_cached_sync_clients(
    planner: str, tmp_path: Path
) -> None:
    """``graph.invoke`` with sync nodes: the chat models use their cached *sync* clients, and
    LangGraph runs the nodes on its own worker threads."""
    from langchain_core.messages import SystemMessage
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    def agent(session: seamtape.Session) -> dict[str, Any]:
        model = langgraph_agent.chat_models(session.upstream or "")[planner]
        bound = model.bind_tools(langgraph_agent.TOOLS)

        def call_model(state: MessagesState) -> dict[str, Any]:
            return {
                "messages": [
                    bound.invoke([SystemMessage(_common.INSTRUCTIONS), *state["messages"]])
                ]
            }

        builder = StateGraph(MessagesState)
        builder.add_node("agent", call_model)
        builder.add_node("tools", ToolNode(langgraph_agent.TOOLS))
        builder.add_edge(START, "agent")
        builder.add_conditional_edges("agent", tools_condition)
        builder.add_edge("tools", "agent")
        state = builder.compile().invoke({"messages": [("user", _common.QUESTION)]})
        return {"answer": state["messages"][-1].text}

    path = tmp_path / "sync.tape"
    with sim.serve(TripModel()) as server:
        with seamtape.record(path, upstream=server.base_url, intercept=True) as rec:
            rec.result = agent(rec)
    assert within_budget(rec.result) and rec.stats["live"] == 2
    with blocking(), seamtape.replay(path, intercept=True) as rep:
        rep.result = agent(rep)
    assert rep.result == rec.result and rep.digest == rec.digest


def test_the_agents_sdks_default_client_follows_each_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``Agent(model="...")`` with no client: the SDK's default provider builds one on a
    module-level ``httpx2.AsyncClient`` it keeps for the process (``shared_http_client``).
    Two recordings and two replays in one process all go through that one client."""
    from agents import Agent, Runner
    from agents.models import openai_provider

    async def agent(session: seamtape.Session) -> dict[str, Any]:
        planner = Agent(
            name="Trip planner",
            instructions=_common.INSTRUCTIONS,
            model="sim-gpt",
            tools=[openai_agents_agent.get_weather, openai_agents_agent.find_hotel],
        )
        result = await Runner.run(planner, _common.QUESTION)
        return {"answer": str(result.final_output)}

    paths = [tmp_path / "first.tape", tmp_path / "second.tape"]
    recorded = []
    with sim.serve(TripModel()) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "not-a-real-key")
        for path in paths:
            with seamtape.record(path, intercept=True) as rec:
                run(agent, rec)
            recorded.append(rec)
            shared = openai_provider.shared_http_client()
    assert all(rec.stats["live"] == 2 and within_budget(rec.result) for rec in recorded)
    for path, rec in zip(paths, recorded, strict=True):
        rep = replay_offline_with(path, agent)
        assert rep.result == rec.result and rep.digest == rec.digest
    assert openai_provider.shared_http_client() is shared  # one client throughout
