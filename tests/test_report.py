"""The report's document and file, and the live server's checks, without a browser.

What a browser does with them is in test_report_browser.py.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from report_tapes import PROBE_CLOSE, PROBE_IMG, PROBE_SCRIPT, record_chat, scripted
from seamtape import sim, wire
from seamtape._steps import steps_of
from seamtape.faces.report import (
    DiffSpec,
    ReportError,
    load_blame,
    load_lint,
    render_report,
    report_data,
    script_json,
    write_report,
)
from seamtape.faces.report.live import TOKEN_HEADER, LiveServer
from seamtape.lenses.diff import diff
from seamtape.tape import Tape

LONG = "Plan a long weekend in Lisbon. " * 60  # over 1 KiB: bodies are gzipped and deltas

CALL = [{"name": "get_weather", "arguments": {"city": "Lisbon"}}]


@pytest.fixture(scope="module")
def chat_tape(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A five-step run whose request bodies grow by appending, and a fork of it at step 2."""
    from report_tapes import chat_agent
    from seamtape.engine.fork import fork

    tape = tmp_path_factory.mktemp("chat") / "chat.tape"
    policy = scripted(CALL, CALL, CALL, CALL, "Sunny all weekend.")
    with sim.serve(policy) as server:
        run = record_chat(tape, server.anthropic_base_url, LONG)
        fork(
            tape,
            run,
            step=2,
            agent=chat_agent(LONG),
            edit={"text": "Rain. Stay home.", "tool_calls": []},
            upstream=server.anthropic_base_url,
        )
    return tape, run


def _piece(piece: dict[str, Any]) -> bytes:
    if "t" in piece:
        return piece["t"].encode("utf-8")
    if "b64" in piece:
        return base64.b64decode(piece["b64"])
    return gzip.decompress(base64.b64decode(piece["gz"]))


def _body(steps: list[dict[str, Any]], index: int, which: str) -> bytes:
    """The page's decoding of a body (web/report.js bodyBytes), in Python."""
    body = steps[index]["raw"][which]
    if "whole" in body:
        return _piece(body["whole"])
    base = _body(steps, body["base"], "request_body")
    middle = _piece(body["mid"])
    return base[: body["prefix"]] + middle + base[len(base) - body["suffix"] :]


def test_the_document_holds_each_step_as_the_codecs_read_it(chat_tape: tuple[Path, str]) -> None:
    tape, run = chat_tape
    data = report_data([tape], run=run)
    shown = next(r for r in data["tapes"][0]["runs"] if r["id"] == run)
    with Tape(tape) as t:
        decoded = steps_of(t, run)
    assert [s["seq"] for s in shown["steps"]] == [1, 2, 3, 4, 5]
    for doc, step in zip(shown["steps"], decoded, strict=True):
        assert step is not None
        assert (doc["model"], doc["stop"]) == (step.model, step.stop_reason)
        assert doc["tools"] == [c.name for c in step.tool_calls]
        assert doc["tokens"]["input"] == step.usage.input_tokens
        assert doc["cost"] == pytest.approx(wire.cost(step))
    assert shown["steps"][4]["decoded"]["text"] == "Sunny all weekend."
    # Each step carries only the messages new since the step before it.
    assert [s["decoded"]["shared"] for s in shown["steps"]] == [0, 1, 3, 5, 7]


def test_bodies_come_back_byte_for_byte_and_the_growing_requests_are_deltas(
    chat_tape: tuple[Path, str],
) -> None:
    tape, run = chat_tape
    shown = next(r for r in report_data([tape], run=run)["tapes"][0]["runs"] if r["id"] == run)
    with Tape(tape) as t:
        exchanges = t.exchanges(run)
        bodies = [(ex.request_bytes(), ex.response_bytes()) for ex in exchanges]
    for doc, ex in zip(shown["steps"], exchanges, strict=True):
        lines = [tuple(shown["headers"][i]) for i in doc["raw"]["request_headers"]]
        assert lines == ex.request_headers
        lines = [tuple(shown["headers"][i]) for i in doc["raw"]["response_headers"]]
        assert lines == ex.response_headers
    for i, (request, response) in enumerate(bodies):
        assert _body(shown["steps"], i, "request_body") == request
        assert _body(shown["steps"], i, "response_body") == response
    kinds = ["whole" if "whole" in s["raw"]["request_body"] else "delta" for s in shown["steps"]]
    assert kinds == ["whole", "delta", "delta", "delta", "delta"]
    encoded = len(json.dumps([s["raw"]["request_body"] for s in shown["steps"]]))
    assert encoded < sum(len(request) for request, _ in bodies) / 4


def test_forks_are_diffed_against_their_parent_with_the_first_divergence(
    chat_tape: tuple[Path, str],
) -> None:
    tape, run = chat_tape
    data = report_data([tape], run=run)
    fork_id = next(r["id"] for r in data["tapes"][0]["runs"] if r["parent"] == run)
    (doc,) = data["diffs"]
    assert (doc["a"]["run"], doc["b"]["run"]) == (run, fork_id)
    expected = diff(tape, run_a=run, run_b=fork_id)
    first = doc["pairs"][doc["first"]]
    assert expected.first is not None and expected.first.a is not None
    assert (first["a"], first["kind"]) == (expected.first.a.seq, expected.first.kind)
    assert first["a"] == 2  # where the fork substituted its answer


def test_nothing_from_a_tape_reaches_the_page_as_markup(tmp_path: Path) -> None:
    tape = tmp_path / "probe.tape"
    policy = scripted(
        [{"name": "get_weather", "arguments": {"city": PROBE_IMG}}], PROBE_SCRIPT + PROBE_CLOSE
    )
    with sim.serve(policy) as server:
        record_chat(tape, server.anthropic_base_url, PROBE_SCRIPT + PROBE_IMG, name=PROBE_CLOSE)
    page = render_report([tape])
    # The page's own three script elements, and no other: the probes are all escaped.
    assert page.count("<script") == 3
    assert page.count("</script") == 3
    assert "<img" not in page
    assert "window.__xss" in page  # the text is there, as JSON with < and > escaped
    embedded = page.split('<script type="application/json" id="seamtape-data">')[1]
    data = json.loads(embedded.split("</script>")[0])
    assert data["tapes"][0]["runs"][0]["name"] == PROBE_CLOSE


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"x": PROBE_CLOSE + "<!-- & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"x": PROBE_CLOSE + "<!-- & \u2028"}


# -- blame and lint files ------------------------------------------------------------------


def _write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"findings": "no"}, "expected a list of findings"),
        ([{"rule": "loop", "severity": "error", "steps": [1]}], "lacks message"),
        ([{"rule": "r", "severity": "fatal", "steps": [1], "message": "m"}], "severity must be"),
        ([{"rule": "r", "severity": "info", "steps": ["1"], "message": "m"}], "step numbers"),
        ([{"rule": "r", "severity": "info", "steps": [1], "message": "m", "run": 3}], "run id"),
    ],
)
def test_a_malformed_lint_file_is_refused_with_what_is_wrong(
    tmp_path: Path, doc: Any, message: str
) -> None:
    with pytest.raises(ReportError, match=message):
        load_lint(_write(tmp_path / "lint.json", doc))


def test_lint_findings_load_from_a_list_or_an_object(tmp_path: Path) -> None:
    finding = {"rule": "retry-storm", "severity": "warning", "steps": [2, 3], "message": "3 tries"}
    as_list = load_lint(_write(tmp_path / "a.json", [finding]))
    as_object = load_lint(_write(tmp_path / "b.json", {"findings": [finding], "version": 1}))
    assert as_list == as_object == [{**finding, "run": None}]


def test_the_lint_commands_json_is_a_lint_file_the_report_reads(
    tmp_path: Path, chat_tape: tuple[Path, str]
) -> None:
    from seamtape.lenses.lint import lint

    tape, run = chat_tape
    # a budget of one model call makes every later step a finding
    found = lint(tape, run=run, config={"rules": {"budget-calls": {"max": 1}}})
    assert found.findings, "the budget was set so that lint must find something"
    loaded = load_lint(_write(tmp_path / "lint.json", found.to_dict()))
    assert [(f["rule"], f["steps"], f["run"]) for f in loaded] == [
        (f.rule, list(f.steps), run) for f in found.findings
    ]
    severities = {"critical": "error", "warn": "warning", "info": "info"}
    assert [f["severity"] for f in loaded] == [severities[f.severity] for f in found.findings]


def test_a_blame_file_must_be_blame_output_for_a_run_of_the_tape(
    tmp_path: Path, chat_tape: tuple[Path, str]
) -> None:
    tape, _ = chat_tape
    with pytest.raises(ReportError, match="not a blame result"):
        load_blame(_write(tmp_path / "x.json", {"run_id": "abc"}))
    stranger = load_blame(_write(tmp_path / "y.json", {"run_id": "0000ffff0000", "steps": []}))
    with pytest.raises(ReportError, match="does not hold"):
        report_data([tape], blame=stranger)


# -- the command ---------------------------------------------------------------------------


def _cli(*args: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "seamtape", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_writes_the_file_asked_for_and_nothing_else(
    tmp_path: Path, chat_tape: tuple[Path, str]
) -> None:
    tape, run = chat_tape
    work = tmp_path / "work"
    work.mkdir()
    lint = _write(
        tmp_path / "lint.json", [{"rule": "r", "severity": "info", "steps": [2], "message": "m"}]
    )
    done = _cli("report", tape, "--run", run, "--lint", lint, "-o", "out.html", cwd=work)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["out.html"]
    page = (work / "out.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and '"rule":"r"' in page
    assert "http://" not in page.split("<script", 1)[0]  # the head loads nothing


def test_a_bad_blame_file_is_one_line_exit_2_and_the_old_report_is_kept(
    tmp_path: Path, chat_tape: tuple[Path, str]
) -> None:
    tape, _ = chat_tape
    out = tmp_path / "report.html"
    out.write_text("the report from before", encoding="utf-8")
    done = _cli("report", tape, "--blame", tmp_path / "missing.json", "-o", out, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: cannot read the blame file")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert out.read_text(encoding="utf-8") == "the report from before"


def test_write_report_replaces_the_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    write_report(out, "one")
    write_report(out, "two")
    assert out.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    with pytest.raises(ReportError, match="no such directory"):
        write_report(tmp_path / "nowhere" / "r.html", "x")


# -- the live server's checks --------------------------------------------------------------


@pytest.fixture
def live(chat_tape: tuple[Path, str]) -> Iterator[LiveServer]:
    with LiveServer([chat_tape[0]], port=0) as server:
        yield server


def _get(server: LiveServer, path: str, **headers: str) -> httpx2.Response:
    return httpx2.get(f"http://127.0.0.1:{server.port}{path}", headers=headers)


def test_the_page_and_its_data_need_the_token(live: LiveServer) -> None:
    assert _get(live, "/").status_code == 403
    assert _get(live, "/?token=wrong").status_code == 403
    assert _get(live, "/api/data", **{TOKEN_HEADER: "wrong"}).status_code == 403
    page = httpx2.get(live.url)
    assert page.status_code == 200 and "connect-src 'self'" in page.text
    data = _get(live, "/api/data", **{TOKEN_HEADER: live.token})
    assert data.status_code == 200 and data.json()["tapes"][0]["runs"]


def test_a_rebinding_host_or_another_origin_is_refused(live: LiveServer) -> None:
    token = {TOKEN_HEADER: live.token}
    evil = _get(live, f"/api/data?token={live.token}", Host="evil.example:80")
    assert evil.status_code == 403 and "Host" in evil.json()["error"]
    assert _get(live, "/api/data", Host=f"localhost:{live.port}", **token).status_code == 200
    cross = _get(live, "/api/data", Origin="http://evil.example", **token)
    assert cross.status_code == 403
    site = _get(live, "/api/data", **{"Sec-Fetch-Site": "cross-site"}, **token)
    assert site.status_code == 403


def test_a_fork_request_needs_origin_token_header_and_json(live: LiveServer) -> None:
    url = f"http://127.0.0.1:{live.port}/api/fork"
    body = {"tape": 0, "run": "x", "step": 1, "edit": {"text": "hi"}}
    same = f"http://127.0.0.1:{live.port}"
    good = {TOKEN_HEADER: live.token, "Origin": same}
    assert httpx2.post(url, json=body, headers={TOKEN_HEADER: live.token}).status_code == 403
    assert httpx2.post(url, json=body, headers={**good, "Origin": "http://evil"}).status_code == 403
    # The token in the query string is not enough for a POST: a form could carry that.
    query = httpx2.post(url + f"?token={live.token}", json=body, headers={"Origin": same})
    assert query.status_code == 403
    text = httpx2.post(url, content=b"{}", headers={**good, "Content-Type": "text/plain"})
    assert text.status_code == 415
    no_agent = httpx2.post(url, json=body, headers=good)
    assert no_agent.status_code == 400 and "--agent" in no_agent.json()["error"]


# -- the demo ------------------------------------------------------------------------------


def embedded_data(page: str) -> Any:
    block = page.split('<script type="application/json" id="seamtape-data">')[1]
    return json.loads(block.split("</script>")[0])


def test_the_demo_ends_with_a_blame_report_in_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from seamtape.faces._demo import run_demo

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    printed = io.StringIO()
    tape = run_demo(tmp_path / "demo", console=Console(file=printed, width=300))
    report = tmp_path / "demo" / "report.html"
    assert f"report: {report}" in printed.getvalue()
    assert list(cwd.iterdir()) == []  # nothing written where the user stood
    data = embedded_data(report.read_text(encoding="utf-8"))
    with Tape(tape) as t:
        root = next(r for r in t.runs() if r.parent is None)
    assert data["selected"]["run"] == data["blame"]["run_id"] == root.id
    verdicts = {s["step"]: s["verdict"] for s in data["blame"]["steps"]}
    assert set(verdicts) == {1, 2, 3}
    assert (
        json.loads((tmp_path / "demo" / "blame.json").read_text())["steps"]
        == data["blame"]["steps"]
    )


def test_serve_from_the_command_line_forks_through_the_simulator(tmp_path: Path) -> None:
    tape = tmp_path / "serve.tape"
    with sim.serve(scripted(CALL, "Sunny.")) as server:
        run = record_chat(tape, server.anthropic_base_url, "Weather?")
    tests = Path(__file__).parent
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "300", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "seamtape", "serve", str(tape), "--port", "0"]
    command += ["--agent", "report_tapes:weather_agent", "--sim"]
    process = subprocess.Popen(command, cwd=tests, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        assert "127.0.0.1 only" in lines[0]
        url = lines[1].removeprefix("open ").strip()
        origin, token = url.split("/?token=")
        assert httpx2.get(url).status_code == 200
        calls = [{"id": "c1", "name": "get_weather", "arguments": {"city": "Porto"}}]
        reply = httpx2.post(
            f"{origin}/api/fork",
            json={"tape": 0, "run": run, "step": 1, "edit": {"text": "", "tool_calls": calls}},
            headers={TOKEN_HEADER: token, "Origin": origin},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["live"] >= 1  # the tail after the edited step went to the simulator
    finally:
        process.terminate()
        process.wait(timeout=30)
    with Tape(tape) as t:
        forked = t.run(reply.json()["run_id"])
    assert (forked.parent, forked.fork_step) == (run, 1)


def test_two_tapes_are_diffed_step_by_step(tmp_path: Path, chat_tape: tuple[Path, str]) -> None:
    tape, run = chat_tape
    other = tmp_path / "other.tape"
    with sim.serve(scripted(CALL, CALL, CALL, "Cloudy.")) as server:
        other_run = record_chat(other, server.anthropic_base_url, LONG)
    spec = DiffSpec(str(tape), run, str(other), other_run)
    data = report_data([str(tape), str(other)], run=run, diffs=[spec])
    assert [t["label"] for t in data["tapes"]] == ["chat.tape", "other.tape"]
    doc = data["diffs"][0]
    assert (doc["a"]["tape"], doc["b"]["tape"]) == (0, 1)
    expected = diff(tape, other, run_a=run, run_b=other_run)
    assert [p["kind"] for p in doc["pairs"]] == [p.kind for p in expected.pairs]
    assert doc["pairs"][doc["first"]]["kind"] == expected.first.kind  # type: ignore[union-attr]
    done = _cli("report", tape, "--diff-tape", other, "-o", tmp_path / "two.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = embedded_data((tmp_path / "two.html").read_text(encoding="utf-8"))
    assert shown["diffs"][0]["pairs"] == doc["pairs"]
    assert (shown["diffs"][0]["a"]["run"], shown["diffs"][0]["b"]["run"]) == (run, other_run)


def test_a_cached_build_of_a_growing_run_equals_a_fresh_one(tmp_path: Path) -> None:
    import threading

    from seamtape.faces.report import StepCache

    tape = tmp_path / "growing.tape"
    gate, reached, cache = threading.Event(), threading.Event(), StepCache()
    with sim.serve(scripted(CALL, CALL, "Done.")) as server:
        recorder = threading.Thread(
            target=record_chat,
            args=(tape, server.anthropic_base_url, LONG),
            kwargs={"gate": gate, "reached": reached},
        )
        recorder.start()
        try:
            assert reached.wait(timeout=60)  # step 1 is on the tape; the run goes on later
            early = report_data([tape], cache=cache)
        finally:
            gate.set()
            recorder.join(timeout=60)
    assert len(early["tapes"][0]["runs"][0]["steps"]) == 1
    assert report_data([tape], cache=cache) == report_data([tape])


def test_the_browser_tests_skip_saying_why_where_there_is_no_chromium(tmp_path: Path) -> None:
    env = {**os.environ, "SEAMTAPE_CHROMIUM": str(tmp_path / "no-chromium")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:randomly",
            "test_report_browser.py",
        ],
        cwd=Path(__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout
    assert f"no Chromium at {tmp_path / 'no-chromium'}" in done.stdout
    assert " passed" not in done.stdout and "skipped" in done.stdout
