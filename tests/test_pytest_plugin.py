"""The pytest plugin, used as a user uses it: a test project run by pytester, in every mode.

Recordings go to the simulator the plugin starts on 127.0.0.1; replays touch no network.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic  # noqa: F401
import httpx2  # noqa: F401
import pytest

import seamtape
from seamtape import sim

# The in-process runs drop the modules they import; the seams keep classes built on the
# first httpx2 they saw, so the libraries the inner tests use are imported here, once.

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

# The agent under test: one request per question in $QUESTIONS, through the tape's client.
AGENT = """
import os

def ask(session):
    answers = []
    with session.httpx2_client() as client:
        for question in os.environ.get("QUESTIONS", "one,two").split(","):
            reply = client.post(
                f"{session.upstream}/v1/messages",
                json={"model": "sim-claude", "max_tokens": 64,
                      "messages": [{"role": "user", "content": question}]},
            )
            answers.append(reply.json()["content"][0]["text"])
    return answers
"""

TEST = """
import os
from agent import ask

def test_ask(tape):
    tape.result = ask(tape)
    assert len(tape.result) == len(os.environ.get("QUESTIONS", "one,two").split(","))
    assert os.environ.get("FAIL_AFTER") is None, "the test failed after its requests"
"""

TAPE = Path("tests/tapes/test_agent/test_ask.tape")


@pytest.fixture(autouse=True)
def _fast_inner_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # hypothesis's plugin imports hypothesis afresh in every in-process run: a second each.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user's project: an agent module and a test that asks it two questions."""
    for name in ("QUESTIONS", "FAIL_AFTER"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(agent=AGENT, test_agent=TEST)
    return pytester


def runs(path: Path) -> list[seamtape.tape.RunInfo]:
    with seamtape.Tape(path) as tape:
        return tape.runs()


def leftovers(folder: Path) -> list[Path]:
    """Recordings written aside and never swapped in or removed."""
    return sorted(folder.glob(".*.recording*"))


def record(project: pytest.Pytester, *args: str) -> Path:
    result = project.runpytest("--tape-mode=once", *args)
    result.assert_outcomes(passed=1)
    return project.path / TAPE


# -- none ------------------------------------------------------------------------------


def test_none_replays_a_recorded_tape(project: pytest.Pytester) -> None:
    tape = record(project)
    (recorded,) = runs(tape)
    assert recorded.exchanges == 2 and recorded.name == "test_agent.py::test_ask"
    assert recorded.upstream and recorded.upstream.startswith("http://127.0.0.1:")
    before = tape.read_bytes()

    project.runpytest().assert_outcomes(passed=1)  # none is the default

    assert tape.read_bytes() == before
    assert len(runs(tape)) == 1


def test_none_without_a_tape_is_an_error_that_says_how_to_record(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--tape-mode=none")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*seamtape: no tape at tests/tapes/test_agent/test_ask.tape*",
            "*pytest --tape-mode=once test_agent.py::test_ask*",
        ]
    )
    assert not (project.path / TAPE).exists()


def test_none_fails_an_unmatched_request_with_step_request_and_json_diff(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The divergence is the test's failure, shown without frames from inside the SDK."""
    project.makepyfile(
        test_agent="""
        import os
        import anthropic

        def test_ask(tape):
            with anthropic.Anthropic(
                api_key="unused", base_url=tape.upstream, http_client=tape.httpx2_client()
            ) as client:
                for question in os.environ["QUESTIONS"].split(","):
                    client.messages.create(
                        model="sim-claude", max_tokens=64,
                        messages=[{"role": "user", "content": question}],
                    )
        """
    )
    monkeypatch.setenv("QUESTIONS", "hello,what is 2 + 2?")
    upstream = runs(record(project))[0].upstream
    monkeypatch.setenv("QUESTIONS", "hello,what is 3 + 3?")

    result = project.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*seamtape: the replay of tests/tapes/test_agent/test_ask.tape (run *) diverged",
            "divergence in run *, step 2: the request body differs from the recording",
            f"  request: POST {upstream}/v1/messages",
            "  at $.messages[0].content:",
            "JSON diff at $.messages[0].content:",
            '- "what is 2 + 2?"',
            '+ "what is 3 + 3?"',
            "test_agent.py:*: in test_ask",
            "*--tape-mode=new*",
        ]
    )
    output = result.stdout.str()
    for inside in ("site-packages", "anthropic/", "_base_client", "httpx2/", "seamtape/"):
        assert inside not in output
    result.stdout.fnmatch_lines(["FAILED test_agent.py::test_ask - divergence in run *step 2*"])


def test_none_fails_a_test_that_stops_short_of_the_recording(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    monkeypatch.setenv("QUESTIONS", "one")

    result = project.runpytest()

    result.assert_outcomes(failed=1)  # the test's own failure, not an error at teardown
    result.stdout.fnmatch_lines(["*1 recorded request(s) were never made; the first is step 2*"])


# -- once ------------------------------------------------------------------------------


def test_once_records_a_missing_tape_then_replays_it(project: pytest.Pytester) -> None:
    tape = record(project)
    before = tape.read_bytes()

    # An upstream nothing listens on: a replay never asks for it.
    result = project.runpytest("--tape-mode=once", "--tape-upstream=http://127.0.0.1:9")

    result.assert_outcomes(passed=1)
    assert tape.read_bytes() == before
    assert leftovers(tape.parent) == []


# -- new -------------------------------------------------------------------------------


def test_new_records_from_the_first_unmatched_request_as_a_new_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tape = record(project)
    monkeypatch.setenv("QUESTIONS", "one,TWO,three")

    project.runpytest("--tape-mode=new").assert_outcomes(passed=1)

    old, new = runs(tape)
    assert (new.parent, new.fork_step, new.exchanges) == (old.id, 2, 3)
    assert new.mutation == {"kind": "new"} and new.upstream == old.upstream
    with seamtape.Tape(tape) as t:
        first_old, first_new = t.exchanges(old.id)[0], t.exchanges(new.id)[0]
        assert first_new.request_body == first_old.request_body  # served, not asked again
        assert first_new.response_body == first_old.response_body
    project.runpytest().assert_outcomes(passed=1)  # none replays the new run
    assert leftovers(tape.parent) == []


def test_new_appends_requests_past_the_end_of_the_recording(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tape = record(project)
    monkeypatch.setenv("QUESTIONS", "one,two,three")

    project.runpytest("--tape-mode=new").assert_outcomes(passed=1)

    old, new = runs(tape)
    assert (new.parent, new.fork_step, new.exchanges) == (old.id, 3, 3)


def test_new_leaves_the_tape_untouched_when_nothing_changed(project: pytest.Pytester) -> None:
    tape = record(project)
    before = tape.read_bytes()

    project.runpytest("--tape-mode=new").assert_outcomes(passed=1)

    assert tape.read_bytes() == before
    assert leftovers(tape.parent) == []


# -- all and rewrite -------------------------------------------------------------------


def test_all_records_a_new_run_beside_the_old_ones(project: pytest.Pytester) -> None:
    tape = record(project)

    project.runpytest("--tape-mode=all").assert_outcomes(passed=1)

    old, new = runs(tape)
    assert new.parent is None and new.exchanges == old.exchanges == 2
    assert new.upstream != old.upstream  # a fresh simulator, a fresh port
    project.runpytest().assert_outcomes(passed=1)


def test_rewrite_records_the_tape_afresh(project: pytest.Pytester) -> None:
    tape = record(project)
    (old,) = runs(tape)

    project.runpytest("--tape-mode=rewrite").assert_outcomes(passed=1)

    (new,) = runs(tape)
    assert new.id != old.id and new.exchanges == 2


@pytest.mark.parametrize("mode", ["all", "rewrite", "new"])
def test_a_re_record_whose_test_fails_keeps_the_old_tape(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    tape = record(project)
    before = tape.read_bytes()
    monkeypatch.setenv("QUESTIONS", "one,two,three")  # something new to record, in every mode
    monkeypatch.setenv("FAIL_AFTER", "1")

    project.runpytest(f"--tape-mode={mode}").assert_outcomes(failed=1)

    assert tape.read_bytes() == before
    assert leftovers(tape.parent) == []


def test_a_first_recording_whose_test_fails_leaves_no_tape(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_AFTER", "1")

    project.runpytest("--tape-mode=once").assert_outcomes(failed=1)

    assert not (project.path / TAPE).exists()
    assert leftovers((project.path / TAPE).parent) == []


# -- the network -----------------------------------------------------------------------


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A real socket listening on 127.0.0.1; its port is in $PORT."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        monkeypatch.setenv("PORT", str(port))
        yield port


def test_block_network_blocks_a_real_socket_while_replaying(
    project: pytest.Pytester, listener: int
) -> None:
    project.makepyfile(
        test_agent="""
        import os, socket
        from agent import ask

        def test_ask(tape):
            tape.result = ask(tape)
            socket.create_connection(("127.0.0.1", int(os.environ["PORT"])), timeout=5).close()
        """
    )
    # Recording is never blocked: it has to reach its upstream.
    project.runpytest("--tape-mode=once", "--block-network").assert_outcomes(passed=1)

    blocked = project.runpytest("--block-network")

    blocked.assert_outcomes(failed=1)
    blocked.stdout.fnmatch_lines([f"*a connection to 127.0.0.1:{listener} was blocked*"])
    project.runpytest("--block-network", "--allowed-hosts=127.0.0.1").assert_outcomes(passed=1)
    project.runpytest().assert_outcomes(passed=1)
    # The host is matched whole: 127.0.0.1 is not allowed by a pattern for 127.0.0.10.
    project.runpytest("--block-network", "--allowed-hosts=127.0.0.10").assert_outcomes(failed=1)


def test_the_plugin_is_inert_for_tests_that_do_not_use_it(
    pytester: pytest.Pytester, listener: int
) -> None:
    pytester.makepyfile(
        test_plain="""
        import os, socket

        def test_plain():
            socket.create_connection(("127.0.0.1", int(os.environ["PORT"])), timeout=5).close()
        """
    )

    pytester.runpytest("--block-network", "--tape-mode=none").assert_outcomes(passed=1)

    assert not (pytester.path / "tests").exists()


# -- where tapes live ------------------------------------------------------------------


def test_default_path_is_module_then_test_name(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_layout="""
        import pytest
        from agent import ask

        class TestTrip:
            def test_plan(self, tape):
                ask(tape)

        @pytest.mark.parametrize("city", ["Lisbon", "Porto"])
        def test_city(tape, city):
            ask(tape)

        @pytest.mark.tape("shared/one.tape")
        def test_named(tape):
            ask(tape)
        """
    )

    project.runpytest("--tape-mode=once", "test_layout.py").assert_outcomes(passed=4)

    tapes = project.path / "tests" / "tapes" / "test_layout"
    assert sorted(p.relative_to(tapes).as_posix() for p in tapes.rglob("*.tape")) == [
        "TestTrip.test_plan.tape",
        "shared/one.tape",
        "test_city[Lisbon].tape",
        "test_city[Porto].tape",
    ]
    project.runpytest("test_layout.py").assert_outcomes(passed=4)


def test_tape_dir_is_read_from_pyproject(project: pytest.Pytester) -> None:
    project.makepyprojecttoml('[tool.seamtape]\ntape_dir = "recordings"\n')

    project.runpytest("--tape-mode=once").assert_outcomes(passed=1)

    assert (project.path / "recordings" / "test_agent" / "test_ask.tape").is_file()
    assert not (project.path / "tests").exists()


def test_block_network_and_allowed_hosts_are_read_from_pyproject(
    project: pytest.Pytester, listener: int
) -> None:
    project.makepyfile(
        test_agent="""
        import os, socket
        from agent import ask

        def test_ask(tape):
            ask(tape)
            socket.create_connection(("127.0.0.1", int(os.environ["PORT"])), timeout=5).close()
        """
    )
    project.runpytest("--tape-mode=once").assert_outcomes(passed=1)
    project.makepyprojecttoml("[tool.seamtape]\nblock_network = true\n")
    project.runpytest().assert_outcomes(failed=1)
    project.makepyprojecttoml(
        '[tool.seamtape]\nblock_network = true\nallowed_hosts = ["localhost"]\n'
    )
    project.runpytest().assert_outcomes(passed=1)


# -- the upstream ----------------------------------------------------------------------


def test_tape_upstream_option_is_recorded_and_given_back_on_replay(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        test_agent="""
        import os
        from agent import ask

        def test_ask(tape):
            assert tape.upstream == os.environ["UPSTREAM"]
            ask(tape)
        """
    )
    with sim.serve() as server:
        monkeypatch.setenv("UPSTREAM", server.base_url)
        project.runpytest("--tape-mode=once", f"--tape-upstream={server.base_url}")
        assert server.request_count == 2
    project.runpytest().assert_outcomes(passed=1)  # the simulator is gone; the URL is on the run


def test_tape_upstream_fixture_can_be_overridden(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest
        from seamtape import sim

        @pytest.fixture
        def tape_upstream():
            with sim.serve(sim.ScriptedPolicy(["scripted one", "scripted two"])) as server:
                yield server.base_url
        """
    )

    project.runpytest("--tape-mode=once").assert_outcomes(passed=1)

    (run,) = runs(project.path / TAPE)
    assert run.result == ["scripted one", "scripted two"]


def test_marker_alone_with_intercept_records_clients_the_test_builds(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_own="""
        import httpx2, pytest

        @pytest.mark.tape(intercept=True)
        def test_own(request):
            tape = request.getfixturevalue("tape")
            with httpx2.Client() as client:  # not built from the session
                reply = client.post(
                    f"{tape.upstream}/v1/messages",
                    json={"model": "sim-claude", "max_tokens": 8,
                          "messages": [{"role": "user", "content": "hi"}]},
                )
            assert reply.status_code == 200
        """
    )

    pytester.runpytest("--tape-mode=once").assert_outcomes(passed=1)
    pytester.runpytest("--block-network").assert_outcomes(passed=1)

    (run,) = runs(pytester.path / "tests" / "tapes" / "test_own" / "test_own.tape")
    assert run.exchanges == 1


# -- the sample project ----------------------------------------------------------------


def test_the_example_project_replays_offline_from_its_committed_tape() -> None:
    project = ROOT / "examples" / "pytest_project"
    tapes = sorted(project.glob("tests/tapes/**/*.tape"))
    assert tapes
    before = [p.read_bytes() for p in tapes]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--block-network", "-W", "error"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert [p.read_bytes() for p in tapes] == before


# -- a run killed mid-recording --------------------------------------------------------


def test_a_recording_left_by_a_killed_run_is_removed_next_run_with_a_line(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tape = record(project)
    before = tape.read_bytes()
    project.makepyfile(
        test_agent="""
        import os, signal
        from agent import ask

        def test_ask(tape):
            tape.result = ask(tape)
            os.kill(os.getpid(), signal.SIGKILL)  # stopped mid-recording, as by the OOM killer
        """
    )
    killed = project.runpytest_subprocess("--tape-mode=all", "-p", "no:hypothesispytest")
    assert killed.ret == -9
    # the scratch copy the killed run was writing, and its write-ahead log
    [left] = [p for p in leftovers(tape.parent) if p.suffix == ".recording"]
    # A scratch another live process is writing (a parallel worker) is never touched.
    with subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE) as other:
        live = tape.with_name(f".{tape.name}.{other.pid}-0badc0de.recording")
        live.write_bytes(b"")
        project.makepyfile(test_agent=TEST)

        result = project.runpytest()  # a replay: it cleans up too

        other.communicate(b"\n")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"seamtape: removed {left.name}, a recording left unfinished beside {tape.name}*"]
    )
    assert leftovers(tape.parent) == [live]
    assert tape.read_bytes() == before
