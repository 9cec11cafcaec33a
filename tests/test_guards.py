"""Guards: the lint rules run in the cursor before each request leaves, and stop the run there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import seamtape
from lint_world import BASE_URL, PROVIDERS, Agent, call, record
from seamtape import sim
from seamtape._cursor import Cursor
from seamtape._steps import steps_of
from seamtape.lenses.lint import Guards, lint
from seamtape.tape import Tape

pytest_plugins = ["pytester"]

SCRIPT = [[call("get_weather", city=c)] for c in ("Lisbon", "Porto", "Faro", "Braga")] + ["Done."]
TESTS = Path(__file__).parent


def step_costs(tape: Path) -> list[float]:
    with Tape(tape) as opened:
        return [s.cost_usd for s in steps_of(opened, opened.run().id)]  # type: ignore[misc, union-attr]


def guarded_run(
    tmp_path: Path,
    provider: str,
    guards: Any,
    *,
    retries: int = 0,
    agent: Any = None,
    script: list[Any] = SCRIPT,
) -> tuple[Path, sim.Simulator, BaseException | None]:
    tape = tmp_path / f"guarded-{provider}.tape"
    agent = agent or Agent(provider, {})
    agent.retries = retries
    raised: BaseException | None = None
    with sim.serve(sim.ScriptedPolicy(script)) as simulator:
        upstream = getattr(simulator, BASE_URL[provider])
        try:
            with seamtape.record(tape, upstream=upstream, guards=guards) as session:
                session.result = agent(session)
        except seamtape.GuardTripped as exc:
            raised = exc
        simulator.wait_idle()
    return tape, simulator, raised


class Hook:
    """A webhook receiver on 127.0.0.1: keeps each POSTed JSON body and signals its arrival."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.arrived = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                hook.bodies.append(json.loads(self.rfile.read(size)))
                self.send_response(204)
                self.end_headers()
                hook.arrived.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_budget_guard_stops_the_run_before_the_request_after_the_crossing(
    tmp_path: Path, provider: str
) -> None:
    costs = step_costs(record(tmp_path, provider, SCRIPT, name="unguarded"))
    assert len(costs) == 5
    budget = (costs[0] + costs[1]) * 0.999  # crossed by step 2
    guards = Guards({"rules": {"budget-cost": {"max_usd": budget}}}, actions=[])
    tape, simulator, raised = guarded_run(tmp_path, provider, guards)
    assert isinstance(raised, seamtape.GuardTripped)
    assert raised.step == 3 and raised.finding.rule == "budget-cost"
    assert simulator.request_count == 2  # the simulator received nothing after step 2
    with Tape(tape) as opened:
        run = opened.run()
        assert run.exchanges == 2 and run.status == "failed"
        (kept,) = opened.findings(run.id)
    assert kept["rule"] == "budget-cost" and kept["steps"] == [2] and kept["guard"] == {"step": 3}
    # lint of the stopped run reports what stopped it
    assert any(f.rule == "budget-cost" for f in lint(tape).findings)


def test_a_budget_the_run_stays_under_lets_it_finish(tmp_path: Path) -> None:
    guards = Guards({"rules": {"budget-cost": {"max_usd": 1.0}, "budget-calls": {"max": 5}}})
    tape, simulator, raised = guarded_run(tmp_path, "anthropic", guards)
    assert raised is None and simulator.request_count == 5
    with Tape(tape) as opened:
        assert opened.run().status == "complete" and opened.findings(opened.run().id) == []


def test_trip_actions_print_log_post_and_call_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hook, log, seen = Hook(), tmp_path / "trips.jsonl", []
    try:
        guards = Guards(
            {"rules": {"budget-calls": {"max": 2}}},
            actions=["print", f"log:{log}", f"webhook:{hook.url}", seen.append],
        )
        _, simulator, raised = guarded_run(tmp_path, "openai", guards)
        assert hook.arrived.wait(10)
    finally:
        hook.close()
    assert raised is not None and simulator.request_count == 2
    (trip,) = seen
    assert trip.step == 3 and trip.finding.rule == "budget-calls"
    (logged,) = [json.loads(line) for line in log.read_text().splitlines()]
    (posted,) = hook.bodies
    assert logged == posted == trip.to_dict()
    assert posted["rule"] == "budget-calls" and posted["step"] == 3
    assert "guard tripped at step 3" in capsys.readouterr().err


def test_a_policy_guard_stops_before_the_result_of_a_denied_tool_goes_back(tmp_path: Path) -> None:
    guards = Guards({"rules": {"tool-policy": {"deny": ["get_weather"]}}}, actions=[])
    _, simulator, raised = guarded_run(tmp_path, "gemini", guards)
    assert raised is not None and raised.finding.rule == "tool-policy"
    assert simulator.request_count == 1


def test_a_loop_made_critical_is_a_breaker(tmp_path: Path) -> None:
    loop = [[call("get_weather", city="Lisbon")]] * 5 + ["Done."]
    guards = Guards({"rules": {"loop-repeat": {"severity": "critical"}}}, actions=[])
    _, simulator, raised = guarded_run(tmp_path, "openai", guards, script=loop)
    assert raised is not None and raised.finding.rule == "loop-repeat"
    assert simulator.request_count == 4  # the 4th identical call came back in answer 4
    warned = Guards(actions=[], trip_at="warn")  # the defaults, tripping on a warning
    _, simulator, raised = guarded_run(tmp_path, "openai", warned, script=loop)
    assert raised is not None and raised.finding.rule == "loop-repeat"
    assert simulator.request_count == 4


def test_sdks_cannot_retry_a_trip_and_agents_cannot_swallow_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not issubclass(seamtape.GuardTripped, Exception)
    attempts = []
    begin = Cursor.begin

    def counting(self: Cursor, *args: Any) -> Any:
        attempts.append(args[1])
        return begin(self, *args)

    monkeypatch.setattr(Cursor, "begin", counting)

    class Swallowing(Agent):
        def __call__(self, session: seamtape.Session) -> Any:
            try:
                return super().__call__(session)
            except BaseException:  # an agent that hides every error from its caller
                return {"answer": "fine"}

    guards = Guards({"rules": {"budget-calls": {"max": 2}}}, actions=[])
    _, simulator, raised = guarded_run(
        tmp_path, "anthropic", guards, retries=5, agent=Swallowing("anthropic", {})
    )
    assert raised is not None  # the session raised it at exit all the same
    assert len(attempts) == 3 and simulator.request_count == 2  # the SDK did not retry


def test_record_guard_on_the_command_line(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    tape, log = tmp_path / "cli.tape", tmp_path / "trips.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "seamtape", "record", str(tape), "--agent", "lint_world:cli_agent",
         "--sim-policy", f"scripted:{script}", "--guard", "budget-calls.max=3",
         "--on-trip", f"log:{log}"],
        cwd=TESTS, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "guard tripped before step 4" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(log.read_text())["rule"] == "budget-calls"
    with Tape(tape) as opened:
        assert opened.run().exchanges == 3
    bad = subprocess.run(
        [sys.executable, "-m", "seamtape", "record", str(tape), "--agent", "lint_world:cli_agent",
         "--guard", "budget-calls.maxx=3"],
        cwd=TESTS, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "maxx" in bad.stderr and "Traceback" not in bad.stderr


PLUGIN_TEST = """
from agent import ask

def test_ask(tape):
    tape.result = ask(tape)

import pytest

@pytest.mark.tape(guards={"rules": {"budget-calls": {"max": 1}}})
def test_guarded_by_marker(tape):
    tape.result = ask(tape)
"""

PLUGIN_AGENT = """
def ask(session):
    with session.httpx2_client() as client:
        for question in ("one", "two"):
            client.post(
                f"{session.upstream}/v1/messages",
                json={"model": "sim-claude", "max_tokens": 64,
                      "messages": [{"role": "user", "content": question}]},
            )
    return "asked"
"""


def test_the_pytest_plugin_guards_recordings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")
    pytester.makepyfile(agent=PLUGIN_AGENT, test_agent=PLUGIN_TEST)
    marked = pytester.runpytest_subprocess("--tape-mode=all")
    marked.assert_outcomes(passed=1, failed=1)  # only the marked test is guarded
    assert "GuardTripped" in marked.stdout.str() and "budget-calls" in marked.stdout.str()
    by_option = pytester.runpytest_subprocess(
        "--tape-mode=all", "-k", "test_ask", "--tape-guard", "budget-calls.max=1"
    )
    by_option.assert_outcomes(failed=1)


def test_a_fork_is_guarded_like_a_recording(tmp_path: Path) -> None:
    parent = record(tmp_path, "anthropic", SCRIPT, name="parent")
    guards = Guards({"rules": {"budget-calls": {"max": 3}}}, actions=[])

    def resample_step_2(guards: Guards | None) -> tuple[Any, int]:
        with sim.serve(sim.ScriptedPolicy(SCRIPT)) as simulator:
            try:
                return seamtape.fork(
                    parent,
                    step=2,
                    agent=Agent("anthropic", {}),
                    resample=True,
                    upstream=getattr(simulator, BASE_URL["anthropic"]),
                    guards=guards,
                ), simulator.request_count
            except seamtape.GuardTripped as trip:
                simulator.wait_idle()
                return trip, simulator.request_count

    unguarded, _ = resample_step_2(None)
    assert 1 + unguarded.live > 3  # the control: unguarded, the fork goes past step 3
    tripped, live = resample_step_2(guards)
    assert isinstance(tripped, seamtape.GuardTripped)
    # The prefix's one served step counts toward the run's calls: steps 2 and 3 went out live.
    assert tripped.step == 4 and tripped.finding.rule == "budget-calls"
    assert live == 2
    with Tape(parent) as opened:
        fork = opened.run(tripped.run)
        assert fork.exchanges == 3 and fork.status == "failed"
        assert [f["rule"] for f in opened.findings(fork.id)] == ["budget-calls"]


def test_fork_guard_on_the_command_line(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT))
    tape = tmp_path / "cli.tape"
    common = ["--agent", "lint_world:cli_agent", "--sim-policy", f"scripted:{script}"]
    recorded = subprocess.run(
        [sys.executable, "-m", "seamtape", "record", str(tape), *common],
        cwd=TESTS, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stderr
    done = subprocess.run(
        [sys.executable, "-m", "seamtape", "fork", str(tape), "--step", "2", "--resample",
         *common, "--guard", "budget-calls.max=3"],
        cwd=TESTS, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "guard tripped before step 4" in done.stderr and "Traceback" not in done.stderr
