"""The command line as a new user meets it in the first hour, run as a subprocess.

Which run replays by default, what an unreachable upstream or a failing agent looks like,
where live calls go, and the conventions every CLI has (--version, -h, completion, --json,
--pythonpath, show --step, a table that fits the terminal).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import seamtape
from seamtape import sim

if TYPE_CHECKING:
    from cli_in_process import Ran

pytest_plugins = ["cli_in_process"]  # the `cli` fixture

TESTS = Path(__file__).parent
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_AGENT = 0, 1, 2, 3
SIM_POLICY = "stochastic:seed=7,tools_plan=get_weather|find_hotel"


def subprocess_cli(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamtape", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runs(path: Path) -> list[seamtape.tape.RunInfo]:
    with seamtape.Tape(path) as tape:
        return tape.runs()


@pytest.fixture
def recorded(tmp_path: Path, cli: Callable[..., Ran]) -> Path:
    """A tape recorded by `seamtape record` against the simulator it starts itself."""
    tape = tmp_path / "trip.tape"
    result = cli("record", tape, "--agent", "first_hour_agents:trip", "--sim-policy", SIM_POLICY)
    assert result.returncode == EXIT_OK, result.stderr
    return tape


# -- 1. what replays by default ------------------------------------------------------------


def test_replay_after_a_fork_replays_the_recording_and_says_which(
    recorded: Path, cli: Callable[..., Ran]
) -> None:
    (root,) = runs(recorded)
    forked = cli(
        "fork", recorded, "--step", "2", "--agent", "first_hour_agents:trip",
        "--edit", '{"text": "No hotel.", "tool_calls": []}',
    )  # fmt: skip
    assert forked.returncode == EXIT_OK, forked.stderr
    assert [r.parent for r in runs(recorded)] == [None, root.id]  # the fork is the latest run

    replayed = cli("replay", recorded, "--agent", "first_hour_agents:trip")

    assert replayed.returncode == EXIT_OK, replayed.stderr
    assert f"replayed run {root.id} (the latest recorded run)" in replayed.stdout
    assert "bit-exact" in replayed.stdout


def test_show_lists_a_fork_under_its_parent(recorded: Path, cli: Callable[..., Ran]) -> None:
    (root,) = runs(recorded)
    seamtape.fork(recorded, step=1, agent=_trip, edit={"text": "Stay home.", "tool_calls": []})
    with seamtape.record(recorded, name="second recording") as session:
        pass  # a later recording with no steps
    second = session.run_id

    out = cli("show", recorded).stdout
    titles = [line for line in out.splitlines() if re.match(r"^\s*(└ )?run [0-9a-f]{12}", line)]

    assert titles[0].startswith(f"run {root.id}")
    assert titles[1].lstrip().startswith("└ run ") and f"forked from {root.id}" in titles[1]
    assert titles[2].startswith(f"run {second}") and "replayed by default" in titles[2]
    shown = json.loads(cli("show", recorded, "--json").stdout)["runs"]
    assert [(r["depth"], r["parent"]) for r in shown] == [(0, None), (1, root.id), (0, None)]


def _trip(session: Any) -> Any:
    from first_hour_agents import trip

    return trip(session)


def test_the_demo_diverges_in_the_recording_not_in_its_fork(
    tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    result = cli("demo", "--workdir", tmp_path)

    assert result.returncode == EXIT_OK, result.stderr
    recording = next(r for r in runs(tmp_path / "demo.tape") if r.parent is None)
    act4 = result.stdout.split("4. a changed agent")[1]
    assert f"divergence in run {recording.id}, step 1" in act4
    assert f"replaying run {recording.id}, the recording" in act4


# -- 2. an upstream that is down, an agent that raises: one line, exit 3 --------------------


def test_recording_against_a_stopped_upstream_is_one_line_exit_3_and_keeps_no_run(
    recorded: Path, cli: Callable[..., Ran]
) -> None:
    port = closed_port()
    before = runs(recorded)

    result = cli(
        "record", recorded, "--agent", "first_hour_agents:weather",
        "--upstream", f"http://127.0.0.1:{port}",
    )  # fmt: skip

    assert result.returncode == EXIT_AGENT
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach the upstream http://127.0.0.1:{port} (ConnectError): "
        f"start `seamtape sim --port {port}` or pass --upstream URL"
    ]
    assert "Traceback" not in result.stdout + result.stderr
    assert [r.id for r in runs(recorded)] == [r.id for r in before]
    fresh = recorded.with_name("fresh.tape")
    again = cli(
        "record", fresh, "--agent", "first_hour_agents:weather",
        "--upstream", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    assert again.returncode == EXIT_AGENT
    assert not fresh.exists()  # the tape it would have created holds nothing: not left behind


def test_a_fork_whose_upstream_is_down_is_one_line_and_stores_no_failed_run(
    tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    tape = tmp_path / "weather.tape"
    from first_hour_agents import weather

    with sim.serve() as server:  # recorded in code against a simulator that then stops
        url = server.base_url
        with seamtape.record(tape, upstream=url) as session:
            session.result = weather(session)

    result = cli("fork", tape, "--step", "1", "--resample", "--agent", "first_hour_agents:weather")

    assert result.returncode == EXIT_AGENT
    port = url.rsplit(":", 1)[1]
    assert result.stderr.strip() == (
        f"error: cannot reach the upstream {url} (ConnectError): "
        f"start `seamtape sim --port {port}` or pass --upstream URL"
    )
    assert [r.parent for r in runs(tape)] == [None]


def test_an_agent_that_raises_exits_3_naming_the_error(
    tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    result = cli("record", tmp_path / "t.tape", "--agent", "first_hour_agents:broken")

    assert result.returncode == EXIT_AGENT
    line = result.stderr.strip()
    assert line.startswith("error: the agent raised ValueError: the agent's own bug (at ")
    assert "first_hour_agents.py:" in line and "\n" not in line


def test_exit_codes_0_1_2(recorded: Path, tmp_path: Path, cli: Callable[..., Ran]) -> None:
    assert cli("verify", recorded).returncode == EXIT_OK
    assert cli("verify", tmp_path / "missing.tape").returncode == EXIT_USAGE
    assert cli("show", recorded, "--no-such-option").returncode == EXIT_USAGE
    changed = cli("replay", recorded, "--agent", "first_hour_agents:weather")
    assert changed.returncode == EXIT_DIVERGED, changed.stderr


# -- 3. one upstream rule: the run's own simulator, restarted with its policy -------------


def test_record_stores_the_simulator_policy_and_says_where_live_calls_went(
    recorded: Path, cli: Callable[..., Ran]
) -> None:
    (run,) = runs(recorded)
    assert run.sim_policy == SIM_POLICY
    out = cli("show", recorded, "--json").stdout
    assert json.loads(out)["runs"][0]["sim_policy"] == SIM_POLICY


def test_a_fork_restarts_the_simulator_with_the_recorded_policy(
    recorded: Path, cli: Callable[..., Ran]
) -> None:
    (root,) = runs(recorded)

    result = cli("fork", recorded, "--step", "1", "--resample", "--agent", "first_hour_agents:trip")

    assert result.returncode == EXIT_OK, result.stderr
    assert re.search(
        rf"live calls to the simulator \(policy {re.escape(SIM_POLICY)}\) at "
        r"http://127\.0\.0\.1:\d+",
        result.stdout,
    )
    fork = runs(recorded)[-1]
    assert fork.parent == root.id and fork.sim_policy == SIM_POLICY
    # The recorded policy plans both tools: the resampled run calls them again.
    assert json.loads(result.stdout[result.stdout.index("{") :])["tools"] == [
        "get_weather",
        "find_hotel",
    ]


def test_a_fork_goes_where_the_user_says(recorded: Path, cli: Callable[..., Ran]) -> None:
    with sim.serve(sim.ScriptedPolicy(["Straight answer."])) as other:
        url = other.base_url
        result = cli(
            "fork", recorded, "--step", "1", "--resample", "--agent", "first_hour_agents:trip",
            "--upstream", url, "--json",
        )  # fmt: skip
        asked = other.request_count
    assert result.returncode == EXIT_OK, result.stderr
    report = json.loads(result.stdout)
    assert report["upstream"] == url and report["sim_policy"] is None
    assert report["live_to"] == url
    assert asked == 1 and report["result"]["answer"] == "Straight answer."


# -- 7. conventions ------------------------------------------------------------------------


def test_version_and_short_help(cli: Callable[..., Ran]) -> None:
    version = cli("--version")
    assert version.returncode == EXIT_OK
    assert version.stdout.strip() == f"seamtape {seamtape.__version__}"
    short = cli("-h")
    assert short.returncode == EXIT_OK and "record" in short.stdout
    assert "Exit codes: 0 ok, 1" in short.stdout
    assert cli("replay", "-h").stdout == cli("replay", "--help").stdout


def test_shell_completion_is_offered() -> None:
    script = Path(sys.executable).parent / "seamtape"  # the installed command, as a shell runs it
    # typer detects the shell from the process that started the command: start it from bash
    result = subprocess.run(
        ["bash", "-c", f"'{script}' --show-completion; exit $?"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert "_SEAMTAPE_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _seamtape_completion seamtape" in result.stdout


def test_python_dash_m_seamtape_is_the_cli() -> None:
    result = subprocess_cli("--version")
    assert result.returncode == EXIT_OK and result.stdout.startswith("seamtape ")
    failed = subprocess_cli("record", "x.tape", "--agent", "no_such_module:run")
    assert failed.returncode == EXIT_USAGE
    assert (
        failed.stderr.strip()
        == "error: cannot import agent module 'no_such_module': No module named 'no_such_module'"
    )


def test_agent_imports_from_src_and_from_pythonpath(
    tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    project = tmp_path / "project"
    (project / "src" / "myagent").mkdir(parents=True)
    (project / "src" / "myagent" / "__init__.py").write_text(
        "def run(session):\n    return {'from': 'src'}\n"
    )
    (project / "elsewhere").mkdir()
    (project / "elsewhere" / "other_agent.py").write_text(
        "def run(session):\n    return {'from': 'elsewhere'}\n"
    )

    from_src = cli("record", "a.tape", "--agent", "myagent:run", "--json", cwd=project)
    missing = cli("record", "b.tape", "--agent", "other_agent:run", cwd=project)
    from_path = cli(
        "record", "b.tape", "--agent", "other_agent:run", "--pythonpath", "elsewhere",
        "--json", cwd=project,
    )  # fmt: skip

    assert from_src.returncode == EXIT_OK, from_src.stderr
    assert json.loads(from_src.stdout)["result"] == {"from": "src"}
    assert missing.returncode == EXIT_USAGE
    assert "cannot import agent module 'other_agent'" in missing.stderr
    assert json.loads(from_path.stdout)["result"] == {"from": "elsewhere"}


def test_check_replay_defaults_to_the_configured_tape_folder(
    recorded: Path, tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    project = tmp_path / "project"
    (project / "recordings").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.seamtape]\ntape_dir = "recordings"\n')
    (project / "recordings" / "trip.tape").write_bytes(recorded.read_bytes())
    (project / "recordings" / "replay.toml").write_text(
        f'pythonpath = ["{TESTS.as_posix()}"]\n\n'
        '[[replay]]\ntape = "trip.tape"\nagent = "first_hour_agents:trip"\n'
    )

    result = cli("check-replay", "--json", cwd=project)

    assert result.returncode == EXIT_OK, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["manifest"]) == Path("recordings/replay.toml")
    assert report["passed"] == report["total"] == 1
    no_config = cli("check-replay", cwd=tmp_path)
    assert no_config.returncode == EXIT_USAGE
    assert "error: tests/tapes: no such manifest" in no_config.stderr


def test_show_step_prints_one_decoded_request_and_answer(
    recorded: Path, cli: Callable[..., Ran]
) -> None:
    result = cli("show", recorded, "--step", "2")

    assert result.returncode == EXIT_OK, result.stderr
    out = result.stdout
    assert re.match(r"run [0-9a-f]{12} step 2: POST http://127\.0\.0\.1:\d+/v1/messages → 200", out)
    assert "anthropic · anthropic.messages · model sim-claude" in out
    assert "tools offered: get_weather, find_hotel" in out
    assert "user: Plan a weekend in Lisbon" in out
    assert "assistant → get_weather({" in out
    assert re.search(r"user ← tool result: .*21°C and sunny", out)
    assert 'tool call find_hotel({"' in out and "stop: tool_use" in out
    detail = json.loads(cli("show", recorded, "--step", "2", "--json").stdout)
    assert detail["answer"]["tool_calls"][0]["name"] == "find_hotel"
    beyond = cli("show", recorded, "--step", "9")
    assert beyond.returncode == EXIT_USAGE and "has steps 1 to 3; no step 9" in beyond.stderr


@pytest.mark.parametrize("width", [60, 90, 140])
def test_show_fits_the_terminal(recorded: Path, width: int, cli: Callable[..., Ran]) -> None:
    # TTY_COMPATIBLE makes rich treat the pipe as the terminal it stands for.
    result = cli("show", recorded, COLUMNS=str(width), TTY_COMPATIBLE="1", TTY_INTERACTIVE="1")

    assert result.returncode == EXIT_OK, result.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert max(len(line) for line in text.splitlines()) <= width, text
    assert re.search(r"^\s*2\s.*find_hotel", text, re.M)  # the steps are still there
    piped = cli("show", recorded, COLUMNS=str(width)).stdout  # not a terminal: whole lines
    assert re.search(r"^\s*2\s+POST\s+/v1/messages\s+200\s+anthropic", piped, re.M)
