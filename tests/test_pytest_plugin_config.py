"""The pytest plugin's settings and escape hatches, used as a pytest-recording user reaches
for them: a test project run by pytester."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic  # noqa: F401
import httpx2  # noqa: F401
import pytest

import seamtape
from test_pytest_plugin import AGENT, TAPE, TEST

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _fast_inner_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")
    for name in ("QUESTIONS", "FAIL_AFTER", "NOISE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(agent=AGENT, test_agent=TEST)
    return pytester


def runs(path: Path) -> list[seamtape.tape.RunInfo]:
    with seamtape.Tape(path) as tape:
        return tape.runs()


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        monkeypatch.setenv("PORT", str(port))
        yield port


# -- 5. where tapes live -------------------------------------------------------------------


def test_modules_of_one_name_in_two_folders_get_tapes_of_their_own(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(agent=AGENT)
    for folder, question in [("unit", "unit question"), ("e2e", "e2e question")]:
        tests = pytester.path / "tests" / folder
        tests.mkdir(parents=True)
        (tests / "__init__.py").write_text("")
        (tests / "test_x.py").write_text(
            "import os\nfrom agent import ask\n\n"
            "def test_ask(tape, monkeypatch):\n"
            f"    monkeypatch.setenv('QUESTIONS', {question!r})\n"
            "    tape.result = ask(tape)\n"
        )
    (pytester.path / "tests" / "__init__.py").write_text("")

    pytester.runpytest("--tape-mode=once").assert_outcomes(passed=2)

    tapes = sorted(p.relative_to(pytester.path).as_posix() for p in pytester.path.rglob("*.tape"))
    assert tapes == [
        "tests/tapes/tests/e2e/test_x/test_ask.tape",
        "tests/tapes/tests/unit/test_x/test_ask.tape",
    ]
    pytester.runpytest().assert_outcomes(passed=2)


# -- 6. settings: addini, validated ----------------------------------------------------------


def test_settings_are_ini_options_shown_in_pytest_help(project: pytest.Pytester) -> None:
    result = project.runpytest("--help")
    for name in ("tape_dir", "tape_mode", "tape_upstream", "tape_sim_policy",
                 "tape_block_network", "tape_allowed_hosts"):  # fmt: skip
        result.stdout.fnmatch_lines([f"  {name} (*"])
    assert result.stdout.str().count("seamtape: ") >= 6


def test_tape_mode_set_in_config_records_without_the_flag(project: pytest.Pytester) -> None:
    project.makepyprojecttoml('[tool.seamtape]\nmode = "once"\n')
    project.runpytest().assert_outcomes(passed=1)
    assert len(runs(project.path / TAPE)) == 1

    project.makepyprojecttoml('[tool.pytest.ini_options]\ntape_mode = "all"\n')
    project.runpytest().assert_outcomes(passed=1)
    assert len(runs(project.path / TAPE)) == 2


def test_a_typo_in_tool_seamtape_fails_loudly(project: pytest.Pytester) -> None:
    project.makepyprojecttoml('[tool.seamtape]\ntape_dri = "recordings"\n')

    result = project.runpytest()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*[[]tool.seamtape[]] has unknown key(s) tape_dri; known: allowed_hosts, *"]
    )


def test_a_boolean_setting_reads_as_written_and_refuses_what_is_not_one(
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
    project.makepyprojecttoml('[tool.seamtape]\nblock_network = "false"\n')
    project.runpytest().assert_outcomes(passed=1)  # "false" is false
    project.makepyprojecttoml('[tool.seamtape]\nblock_network = "true"\n')
    project.runpytest().assert_outcomes(failed=1)  # the control: "true" blocks
    project.makepyprojecttoml('[tool.seamtape]\nblock_network = "flase"\n')
    wrong = project.runpytest()
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR
    wrong.stderr.fnmatch_lines(["*seamtape: block_network must be true or false, not 'flase'*"])
    project.makepyprojecttoml('[tool.pytest.ini_options]\ntape_block_network = "flase"\n')
    assert project.runpytest().ret == pytest.ExitCode.USAGE_ERROR


def test_new_episodes_is_new(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project.runpytest("--tape-mode=once").assert_outcomes(passed=1)
    monkeypatch.setenv("QUESTIONS", "one,TWO")

    project.runpytest("--tape-mode=new_episodes").assert_outcomes(passed=1)

    old, new = runs(project.path / TAPE)
    assert (new.parent, new.fork_step, new.mutation) == (old.id, 2, {"kind": "new"})
    project.runpytest().assert_outcomes(passed=1)


# -- 6. tape_config: hooks, ignored paths, repeats; extra tapes ----------------------------

NOISY = """
import os, uuid

def ask(session):
    with session.httpx2_client() as client:
        reply = client.post(
            f"{session.upstream}/v1/messages",
            json={"model": "sim-claude", "max_tokens": 64,
                  "metadata": {"user_id": uuid.uuid4().hex},
                  "messages": [{"role": "user", "content": os.environ.get("Q", "hi")}]},
        )
    return reply.json()["content"][0]["text"]
"""

NOISY_TEST = """
from noisy import ask

def test_ask(tape):
    ask(tape)
"""


def test_ignore_paths_leave_a_volatile_field_out_of_matching(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(noisy=NOISY, test_agent=NOISY_TEST)
    pytester.runpytest("--tape-mode=once").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(failed=1)  # strict by default: the uuid differs

    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef tape_config():\n"
        "    return {'ignore_paths': ['$.metadata.user_id']}\n"
    )
    pytester.runpytest().assert_outcomes(passed=1)
    monkeypatch.setenv("Q", "something else")
    pytester.runpytest().assert_outcomes(failed=1)  # the rest of the body is still strict


def test_before_record_request_and_response_hooks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(noisy=NOISY, test_agent=NOISY_TEST)
    pytester.makeconftest(
        """
        import dataclasses, json, pytest

        def scrub_request(request):
            body = json.loads(request.body)
            body.pop("metadata", None)
            return dataclasses.replace(request, body=json.dumps(body).encode())

        def scrub_response(response):
            body = json.loads(response.body)
            body["id"] = "msg_scrubbed"
            return dataclasses.replace(response, body=json.dumps(body).encode())

        @pytest.fixture
        def tape_config():
            return {"before_record_request": scrub_request,
                    "before_record_response": scrub_response}
        """
    )

    pytester.runpytest("--tape-mode=once").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)  # matched on the scrubbed request

    with seamtape.Tape(pytester.path / TAPE) as tape:
        (exchange,) = tape.exchanges(tape.run().id)
        assert b"metadata" not in exchange.request_bytes()
        assert b'"msg_scrubbed"' in exchange.response_bytes()


def test_allow_playback_repeats(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUESTIONS", "same")
    project.runpytest("--tape-mode=once").assert_outcomes(passed=1)
    monkeypatch.setenv("QUESTIONS", "same,same")
    project.runpytest().assert_outcomes(failed=1)  # the second "same" was never recorded

    project.makepyfile(
        test_agent="""
        import pytest
        from agent import ask

        @pytest.mark.tape(allow_playback_repeats=True)
        def test_ask(tape):
            first, second = ask(tape)
            assert first == second
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_extra_tapes_in_the_marker_are_read_only_and_served_in_any_order(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        test_shared="""
        from agent import ask

        def test_login(tape, monkeypatch):
            monkeypatch.setenv("QUESTIONS", "log in")
            ask(tape)
        """,
        test_agent="""
        import pytest
        from agent import ask

        @pytest.mark.tape("own.tape", "../test_shared/test_login.tape")
        def test_ask(tape, monkeypatch):
            monkeypatch.setenv("QUESTIONS", "log in,what now?")
            assert len(ask(tape)) == 2
        """,
    )
    project.runpytest("test_shared.py", "--tape-mode=once").assert_outcomes(passed=1)
    shared = project.path / "tests/tapes/test_shared/test_login.tape"
    before = shared.read_bytes()

    project.runpytest("test_agent.py", "--tape-mode=once").assert_outcomes(passed=1)

    (own,) = runs(project.path / "tests/tapes/test_agent/own.tape")
    assert own.exchanges == 1  # "log in" came from the shared tape; only "what now?" is new
    assert shared.read_bytes() == before
    project.runpytest("test_agent.py").assert_outcomes(passed=1)


def test_an_unknown_tape_config_key_fails_the_test(project: pytest.Pytester) -> None:
    project.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef tape_config():\n"
        "    return {'ignore_path': ['$.x']}\n"
    )
    result = project.runpytest()
    result.stdout.fnmatch_lines(["*tape_config: unknown option(s) ignore_path; known: *"])


# -- 1, 3, 4: what replays, where live calls go, what is not saved -------------------------


def test_plain_pytest_replays_the_recording_after_a_fork_was_added(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.runpytest("--tape-mode=once").assert_outcomes(passed=1)
    tape = project.path / TAPE
    (root,) = runs(tape)
    monkeypatch.syspath_prepend(str(project.path))
    import agent  # the project's own agent module

    seamtape.fork(tape, step=1, agent=agent.ask, edit={"text": "forked"})
    sys.modules.pop("agent", None)
    assert runs(tape)[-1].parent == root.id

    result = project.runpytest("-v")

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"replayed run {root.id} (*) of {TAPE.as_posix()}"])


def test_a_recording_says_where_its_live_calls_went_and_a_rerecord_keeps_the_policy(
    project: pytest.Pytester,
) -> None:
    project.makepyprojecttoml('[tool.seamtape]\nsim_policy = "stochastic:seed=5"\n')
    first = project.runpytest("--tape-mode=once")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(
        [
            "*= seamtape =*",
            f"recorded run * into {TAPE.as_posix()}: 2 live request(s) to the simulator "
            "(policy stochastic:seed=5) at http://127.0.0.1:*",
        ]
    )
    assert [r.sim_policy for r in runs(project.path / TAPE)] == ["stochastic:seed=5"]
    (project.path / "pyproject.toml").unlink()

    again = project.runpytest("--tape-mode=rewrite")

    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*to the simulator (policy stochastic:seed=5) at *"])
    assert [r.sim_policy for r in runs(project.path / TAPE)] == ["stochastic:seed=5"]


def test_a_failed_recording_says_tape_not_saved(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_AFTER", "1")

    result = project.runpytest("--tape-mode=once")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"tape not saved: {TAPE.as_posix()} (the test failed)"])
    assert not (project.path / TAPE).exists()


def test_an_unreachable_upstream_is_one_line_and_leaves_no_tape(
    project: pytest.Pytester,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    result = project.runpytest("--tape-mode=once", f"--tape-upstream=http://127.0.0.1:{port}")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"seamtape: cannot reach the upstream http://127.0.0.1:{port} (ConnectError): "
            f"start `seamtape sim --port {port}` or pass --tape-upstream URL"
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert not (project.path / TAPE).exists()
