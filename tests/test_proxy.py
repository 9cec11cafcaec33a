"""The localhost proxy, driven by clients that are not Python (curl, Node's fetch): record
against the simulator, stop it, replay; streams, divergences, several upstreams, retries."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from seamtape import sim
from seamtape._errors import SeamtapeError
from seamtape.engine.proxy import serve_proxy
from seamtape.seams._ignore import _ANY as ANY
from seamtape.seams._ignore import parse_path, without
from seamtape.seams._proxy import DIVERGENCE_STATUS, Route, parse_routes, routes_from_text
from seamtape.tape import Tape

CURL = shutil.which("curl")
NODE = shutil.which("node")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")
needs_node = pytest.mark.skipif(
    NODE is None, reason="Node is not installed (apt-get install nodejs): no fetch client to test"
)
FETCH_CLIENT = Path(__file__).parent / "clients" / "fetch_client.mjs"


def anthropic_body(text: str = "What is the weather in Paris?", *, stream: bool = False) -> str:
    doc = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}],
    }
    if stream:
        doc["stream"] = True
    return json.dumps(doc)


def openai_body(text: str = "hello") -> str:
    return json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})


_CURL_REQUEST = (
    *("-H", "content-type: application/json"),
    *("-H", "x-api-key: sk-ant-api03-curlsecret"),
    "--data-binary",
)


def curl(url: str, body: str, *extra: str) -> bytes:
    """Status line, headers and body exactly as curl received them (-i), unbuffered (-N)."""
    assert CURL is not None
    done = subprocess.run(
        [CURL, "-sS", "-i", "-N", "--max-time", "20", url, *extra, *_CURL_REQUEST, body],
        capture_output=True,
        check=True,
    )
    return done.stdout


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[1]


def node_fetch(*requests: tuple[str, str]) -> list[dict[str, Any]]:
    """Each (url, body) POSTed in turn by one Node process; status, headers, body of each."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, str(FETCH_CLIENT), json.dumps(requests)], capture_output=True, check=True, timeout=60
    )
    return json.loads(done.stdout)


# --- curl -------------------------------------------------------------------------------------


@needs_curl
def test_curl_json_and_stream_record_then_replay_with_the_simulator_stopped(
    tape_path: Path,
) -> None:
    with sim.serve() as upstream:
        sim_url = upstream.base_url
        with serve_proxy(tape_path, "record", upstreams=[sim_url]) as proxy:
            recorded_json = curl(proxy.base_url + "/v1/messages", anthropic_body())
            recorded_stream = curl(proxy.base_url + "/v1/messages", anthropic_body(stream=True))
        assert upstream.request_count == 2
    assert proxy.report is not None and proxy.report.live == 2
    assert status_of(recorded_json) == 200 and b'"type":"message"' in body_of(recorded_json)
    assert b"event: message_stop" in body_of(recorded_stream)

    with Tape(tape_path) as tape:
        run = tape.run()
        exchanges = tape.exchanges(run.id)
    assert run.upstream == sim_url
    assert [ex.url for ex in exchanges] == [sim_url + "/v1/messages"] * 2
    assert exchanges[1].chunks is not None and len(exchanges[1].chunks) > 3  # as it arrived
    request_headers = dict((k.lower(), v) for k, v in exchanges[0].request_headers)
    assert "curlsecret" not in request_headers["x-api-key"]  # redacted, as in-process seams do

    # The simulator is stopped: the proxy answers from the tape, byte for byte.
    with serve_proxy(tape_path, "replay") as proxy:
        assert curl(proxy.base_url + "/v1/messages", anthropic_body()) == recorded_json
        replayed_stream = curl(proxy.base_url + "/v1/messages", anthropic_body(stream=True))
    assert replayed_stream == recorded_stream
    assert proxy.report is not None
    assert (proxy.report.served, proxy.report.live, proxy.report.divergence) == (2, 0, None)
    assert proxy.report.digest == run.digest


@needs_curl
def test_status_and_headers_are_kept_and_retries_are_each_their_own_exchange(
    tape_path: Path,
) -> None:
    with sim.serve() as upstream:
        upstream.inject(sim.Fault.rate_limit(retry_after=0))
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            # curl's own retry: a 429 is transient to it, so it asks again (after about 1 s).
            recorded = curl(proxy.base_url + "/v1/messages", anthropic_body(), "--retry", "1")
        assert upstream.request_count == 2
    first, second = recorded.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"429 ") and second.startswith(b"200 ")
    assert b"retry-after: 0" in first.lower()
    with Tape(tape_path) as tape:
        exchanges = tape.exchanges(tape.run().id)
    assert [ex.status for ex in exchanges] == [429, 200]
    assert ("retry-after", "0") in [(k.lower(), v) for k, v in exchanges[0].response_headers]
    with serve_proxy(tape_path, "replay") as proxy:
        replayed = curl(proxy.base_url + "/v1/messages", anthropic_body(), "--retry", "1")
    assert replayed == recorded
    assert proxy.report is not None and (proxy.report.served, proxy.report.divergence) == (2, None)


@needs_curl
def test_an_unmatched_request_is_answered_with_the_divergence_and_reaches_no_network(
    tape_path: Path,
) -> None:
    log: list[str] = []
    with sim.serve() as upstream:
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            curl(proxy.base_url + "/v1/messages", anthropic_body("first question"))
        # The simulator stays up: a replay that went live would reach it.
        with serve_proxy(tape_path, "replay", log=log.append) as proxy:
            raw = curl(proxy.base_url + "/v1/messages", anthropic_body("another question"))
        assert upstream.request_count == 1
    assert status_of(raw) == DIVERGENCE_STATUS
    assert b"x-seamtape-divergence: true" in raw.lower()
    error = json.loads(body_of(raw))["error"]
    assert error["type"] == "seamtape_divergence"
    assert error["step"] == 1
    assert error["path"] == "$.messages[0].content"
    assert (error["recorded"], error["new"]) == ("first question", "another question")
    assert any("412" in line and "$.messages[0].content" in line for line in log)
    assert proxy.report is not None and proxy.report.divergence is not None
    assert "step 1" in proxy.report.divergence


@needs_curl
def test_several_upstreams_at_once_one_path_prefix_each(tmp_path: Path) -> None:
    tape_path = tmp_path / "multi.tape"
    with sim.serve() as anthropic_sim, sim.serve() as openai_sim:
        a_url, o_url = anthropic_sim.base_url, openai_sim.openai_base_url
        specs = [f"anthropic={a_url}", f"openai={o_url}"]
        with serve_proxy(tape_path, "record", upstreams=specs) as proxy:
            variables = dict(proxy.variables)
            a = curl(variables["ANTHROPIC_BASE_URL"] + "/v1/messages", anthropic_body())
            o = curl(variables["OPENAI_BASE_URL"] + "/chat/completions", openai_body())
        assert (anthropic_sim.request_count, openai_sim.request_count) == (1, 1)
    assert variables["ANTHROPIC_BASE_URL"] == proxy.base_url + "/anthropic"
    assert variables["OPENAI_BASE_URL"] == proxy.base_url + "/openai"  # the /v1 is upstream's
    assert b'"type":"message"' in body_of(a) and b'"chat.completion"' in body_of(o)
    with Tape(tape_path) as tape:
        urls = [ex.url for ex in tape.exchanges(tape.run().id)]
    assert urls == [a_url + "/v1/messages", o_url + "/chat/completions"]
    with serve_proxy(tape_path, "replay") as proxy:
        assert curl(proxy.base_url + "/anthropic/v1/messages", anthropic_body()) == a
        assert curl(proxy.base_url + "/openai/chat/completions", openai_body()) == o
        missing = curl(proxy.base_url + "/gemini/v1beta/models/x:generateContent", "{}")
    assert status_of(missing) == 404 and b"/anthropic/" in missing


@needs_curl
def test_an_upstream_that_is_down_is_a_502_recorded_and_replayed(tape_path: Path) -> None:
    # A socket bound but never listening holds its port, so nothing else can take it, and
    # refuses every connection to it: an upstream that is down, for as long as the test runs.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{held.getsockname()[1]}"
        with serve_proxy(tape_path, "record", upstreams=[dead]) as proxy:
            raw = curl(proxy.base_url + "/v1/messages", anthropic_body())
    assert status_of(raw) == 502
    assert json.loads(body_of(raw))["error"]["type"] == "seamtape_upstream_error"
    with Tape(tape_path) as tape:
        (exchange,) = tape.exchanges(tape.run().id)
    assert exchange.status == 0 and exchange.error is not None
    with serve_proxy(tape_path, "replay") as proxy:
        assert status_of(curl(proxy.base_url + "/v1/messages", anthropic_body())) == 502
    assert proxy.report is not None and proxy.report.divergence is None


@needs_curl
def test_a_fork_serves_the_prefix_substitutes_the_step_and_records_the_tail(
    tape_path: Path,
) -> None:
    with sim.serve() as upstream:
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            one = curl(proxy.base_url + "/v1/messages", anthropic_body("one"))
            curl(proxy.base_url + "/v1/messages", anthropic_body("two"))
        with serve_proxy(tape_path, "fork", step=2, edit={"text": "forked answer"}) as proxy:
            assert curl(proxy.base_url + "/v1/messages", anthropic_body("one")) == one
            two = curl(proxy.base_url + "/v1/messages", anthropic_body("two"))
            assert upstream.request_count == 2  # the prefix and the substitute cost nothing
            curl(proxy.base_url + "/v1/messages", anthropic_body("three"))
        assert upstream.request_count == 3  # the tail went live
    assert b"forked answer" in body_of(two)
    assert proxy.report is not None and (proxy.report.served, proxy.report.live) == (1, 1)
    with Tape(tape_path) as tape:
        fork = tape.run(proxy.run_id)
        assert fork.parent is not None and fork.fork_step == 2
        assert len(tape.exchanges(fork.id)) == 3


# --- streams as they arrive -------------------------------------------------------------------


def test_a_stream_reaches_the_client_chunk_by_chunk_as_it_arrives(tape_path: Path) -> None:
    gate = threading.Event()
    with sim.serve() as upstream:
        upstream.inject(sim.Fault.hold_stream(until=gate, after_frames=1))
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            body = anthropic_body(stream=True).encode()
            timeout = httpx.Timeout(10.0)  # a proxy that waited for the whole body would hang
            with httpx.stream(
                "POST", proxy.base_url + "/v1/messages", content=body, timeout=timeout
            ) as response:
                chunks = response.iter_raw()
                first = next(chunks)
                # The upstream holds every later frame until the gate opens.
                assert b"message_start" in first and b"message_stop" not in first
                gate.set()
                rest = b"".join(chunks)
    assert b"event: message_stop" in rest


# --- Node's fetch ----------------------------------------------------------------------------


@needs_node
def test_node_fetch_json_and_stream_record_then_replay(tape_path: Path) -> None:
    with sim.serve() as upstream:
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            url = dict(proxy.variables)["ANTHROPIC_BASE_URL"] + "/v1/messages"
            recorded = node_fetch((url, anthropic_body()), (url, anthropic_body(stream=True)))
    assert [r["status"] for r in recorded] == [200, 200]
    assert recorded[1]["headers"]["content-type"].startswith("text/event-stream")
    assert "message_stop" in recorded[1]["body"]
    with serve_proxy(tape_path, "replay") as proxy:
        url = dict(proxy.variables)["ANTHROPIC_BASE_URL"] + "/v1/messages"
        *replayed, diverged = node_fetch(
            (url, anthropic_body()),
            (url, anthropic_body(stream=True)),
            (url, anthropic_body("not what was recorded")),
        )
    assert replayed == recorded
    assert diverged["status"] == DIVERGENCE_STATUS
    assert json.loads(diverged["body"])["error"]["type"] == "seamtape_divergence"


# --- the command line -------------------------------------------------------------------------


@needs_curl
def test_the_cli_prints_the_base_url_and_variables_and_stops_on_a_signal(
    tape_path: Path,
) -> None:
    def start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
        process = subprocess.Popen(
            [sys.executable, "-m", "seamtape.faces.cli", "proxy", *args, "--tape", str(tape_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert process.stdout is not None
        banner = []
        for line in process.stdout:  # the banner ends with the Ctrl-C hint
            banner.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                return process, banner
        raise AssertionError(
            f"the proxy did not start: {process.stderr.read() if process.stderr else ''}"
        )

    def stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        return process.returncode, out, err

    with sim.serve() as upstream:
        process, banner = start("record", "--upstream", upstream.base_url)
        variables = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in banner
            if line.strip().startswith("export ")
        )
        recorded = curl(variables["ANTHROPIC_BASE_URL"] + "/v1/messages", anthropic_body())
        code, out, err = stop(process)
    assert banner[0].startswith("seamtape proxy (record, run ")
    assert set(variables) >= {"ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"}
    assert variables["OPENAI_BASE_URL"].endswith("/v1")
    assert code == 0 and "0 exchanges served from the tape, 1 live" in out
    assert "POST /v1/messages → 200" in err

    process, banner = start("replay")
    base = dict(
        line.strip().removeprefix("export ").split("=", 1)
        for line in banner
        if line.strip().startswith("export ")
    )["ANTHROPIC_BASE_URL"]
    assert curl(base + "/v1/messages", anthropic_body()) == recorded
    diverged = curl(base + "/v1/messages", anthropic_body())  # one more than was recorded
    code, out, err = stop(process)
    assert status_of(diverged) == DIVERGENCE_STATUS
    assert code == 1 and "was never recorded" in err


# --- routes -----------------------------------------------------------------------------------


def test_routes_parse_and_round_trip_through_the_run() -> None:
    routes = parse_routes(["anthropic=https://api.anthropic.com/", "https://example.test/v1"])
    assert routes == [
        Route("anthropic", "https://api.anthropic.com"),
        Route("", "https://example.test/v1"),
    ]
    assert routes_from_text("anthropic=https://api.anthropic.com https://example.test/v1") == routes


@pytest.mark.parametrize(
    ("specs", "complaint"),
    [
        ([], "at least one --upstream"),
        (["ftp://example.test"], "http(s) URL"),
        (["a b=https://x.test"], "the name must be"),
        (["x=https://a.test", "x=https://b.test"], "given twice"),
        (["https://a.test?key=1"], "no query"),
    ],
)
def test_bad_upstreams_are_one_clear_error(specs: list[str], complaint: str) -> None:
    with pytest.raises(SeamtapeError, match=None) as caught:
        parse_routes(specs)
    assert complaint in str(caught.value)


def test_a_replay_takes_no_upstream_and_a_missing_tape_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SeamtapeError, match="drop --upstream"):
        serve_proxy(tmp_path / "t.tape", "replay", upstreams=["https://x.test"])
    with pytest.raises(SeamtapeError):
        serve_proxy(tmp_path / "missing.tape", "replay")
    assert not (tmp_path / "missing.tape").exists()


# --- ignorable paths --------------------------------------------------------------------------


def stamped(stamp: str, text: str = "hello") -> str:
    """A request as a client that stamps each one (a time, an id of its own) sends it."""
    doc = json.loads(anthropic_body(text))
    doc["metadata"] = {"user_id": stamp}
    return json.dumps(doc)


@needs_curl
def test_ignored_paths_let_a_stamped_request_replay_and_nothing_else(tape_path: Path) -> None:
    with sim.serve() as upstream:
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            recorded = curl(proxy.base_url + "/v1/messages", stamped("run-1"))
    with Tape(tape_path) as tape:
        digest = tape.run().digest

    with serve_proxy(tape_path, "replay") as proxy:  # without: the stamp is a divergence
        raw = curl(proxy.base_url + "/v1/messages", stamped("run-2"))
    error = json.loads(body_of(raw))["error"]
    assert (error["path"], error["recorded"], error["new"]) == (
        "$.metadata.user_id",
        "run-1",
        "run-2",
    )
    assert "--ignore-path" in error["hint"]

    with serve_proxy(tape_path, "replay", ignore=["$.metadata.user_id"]) as proxy:
        assert curl(proxy.base_url + "/v1/messages", stamped("run-2")) == recorded
    assert proxy.report is not None
    assert (proxy.report.ignored, proxy.report.divergence) == (1, None)
    assert proxy.report.digest == digest

    with serve_proxy(tape_path, "replay", ignore=["$.metadata.user_id"]) as proxy:
        raw = curl(proxy.base_url + "/v1/messages", stamped("run-3", text="something else"))
    assert status_of(raw) == DIVERGENCE_STATUS  # a difference elsewhere still diverges
    assert json.loads(body_of(raw))["error"]["path"] == "$.messages[0].content"


def test_ignore_paths_parse_as_divergences_name_them() -> None:
    assert parse_path('$.messages[*].metadata["x-id"]') == ("messages", ANY, "metadata", "x-id")
    doc = {"a": [{"t": 1, "k": 2}, {"t": 3}], "b": 4}
    assert without(doc, [parse_path("$.a[*].t"), parse_path("$.missing.path")]) == {
        "a": [{"k": 2}, {}],
        "b": 4,
    }
    for bad in ("metadata.id", "$", "$.a b", "$[x]"):
        with pytest.raises(SeamtapeError, match="ignore path"):
            parse_path(bad)
    with pytest.raises(SeamtapeError, match="replay or fork"):
        serve_proxy("unused.tape", "record", upstreams=["https://x.test"], ignore=["$.a"])


@needs_curl
def test_a_fork_sends_its_live_requests_to_the_upstream_it_is_given(tape_path: Path) -> None:
    with sim.serve() as first:
        with serve_proxy(tape_path, "record", upstreams=[first.base_url]) as proxy:
            one = curl(proxy.base_url + "/v1/messages", anthropic_body("one"))
            curl(proxy.base_url + "/v1/messages", anthropic_body("two"))
    with sim.serve() as second:  # the first upstream is gone; the fork resamples on this one
        with serve_proxy(
            tape_path, "fork", step=2, resample=True, upstreams=[second.base_url]
        ) as proxy:
            assert curl(proxy.base_url + "/v1/messages", anthropic_body("one")) == one
            two = curl(proxy.base_url + "/v1/messages", anthropic_body("two"))
        assert second.request_count == 1
        assert second.requests[0].path == "/v1/messages"
    assert status_of(two) == 200
    with Tape(tape_path) as tape:
        fork = tape.run(proxy.run_id)
        # Stored against the recorded upstream, so the fork lines up with its parent.
        assert [ex.url for ex in tape.exchanges(fork.id)][1].startswith(fork.upstream or "?")


def test_concurrent_requests_record_and_replay_in_either_order(tape_path: Path) -> None:
    import concurrent.futures

    def both(base: str, order: list[str]) -> dict[str, bytes]:
        def ask(text: str) -> tuple[str, bytes]:
            payload = anthropic_body(text, stream=True)
            response = httpx.post(base + "/v1/messages", content=payload, timeout=10)
            return text, response.content

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            return dict(pool.map(ask, order))

    # The first stream is held open until the second request arrives: the two are in flight
    # together, as concurrent requests are, so the replay may see them in either order.
    second_arrived = threading.Event()

    def hold_the_first(request: sim.RecordedRequest) -> sim.Fault | None:
        if request.index == 1:
            second_arrived.set()
        return sim.Fault.hold_stream(until=second_arrived) if request.index == 0 else None

    with sim.serve(faults=hold_the_first) as upstream:
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            recorded = both(proxy.base_url, ["left", "right"])
    with Tape(tape_path) as tape:
        assert [ex.batch for ex in tape.exchanges(tape.run().id)] == [1, 1]
    with serve_proxy(tape_path, "replay") as proxy:
        replayed = both(proxy.base_url, ["right", "left"])
    assert replayed == recorded
    assert proxy.report is not None and proxy.report.divergence is None


def test_a_busy_port_is_one_error_and_leaves_no_run(tape_path: Path) -> None:
    with sim.serve() as upstream:
        with pytest.raises(SeamtapeError, match=f"cannot listen on 127.0.0.1:{upstream.port}"):
            serve_proxy(tape_path, "record", upstreams=[upstream.base_url], port=upstream.port)
    assert not tape_path.exists()


@needs_curl
def test_a_client_that_takes_it_for_an_http_proxy_is_told_what_to_set(tape_path: Path) -> None:
    with sim.serve() as upstream:
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            raw = curl(
                "http://api.example.test/v1/messages", anthropic_body(), "-x", proxy.base_url
            )
        assert upstream.request_count == 0
    assert status_of(raw) == 400 and b"ANTHROPIC_BASE_URL" in raw


@needs_curl
def test_a_client_that_stops_early_is_reported_unless_the_replay_is_partial(
    tape_path: Path,
) -> None:
    with sim.serve() as upstream:
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            curl(proxy.base_url + "/v1/messages", anthropic_body("one"))
            curl(proxy.base_url + "/v1/messages", anthropic_body("two"))
    for partial, verdict in ((False, "1 recorded request(s) were never made"), (True, None)):
        with serve_proxy(tape_path, "replay", partial=partial) as proxy:
            curl(proxy.base_url + "/v1/messages", anthropic_body("one"))
        assert proxy.report is not None
        if verdict is None:
            assert proxy.report.divergence is None
        else:
            assert proxy.report.divergence is not None and verdict in proxy.report.divergence


def ask_each_sdk() -> dict[str, str]:
    """The official SDKs, given no base URL in code: each finds it in its own variable."""
    import anthropic
    import openai
    from google import genai

    reply = anthropic.Anthropic(api_key="sk-ant-env-test", max_retries=0).messages.create(
        model="sim-claude", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    completion = openai.OpenAI(api_key="sk-env-test", max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    gemini = genai.Client(api_key="env-test")  # kept: a freed client closes its HTTP pool
    generated = gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    return {
        "anthropic": "".join(b.text for b in reply.content if b.type == "text"),
        "openai": completion.choices[0].message.content or "",
        "gemini": generated.text or "",
    }


def test_each_sdk_finds_the_proxy_by_the_variable_it_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The banner's variables are the ones the SDKs read, with the paths they expect."""
    pytest.importorskip("google.genai")
    tape_path = tmp_path / "sdks.tape"
    for name in list(os.environ):
        if name.endswith(("_BASE_URL", "_API_KEY")):
            monkeypatch.delenv(name)

    def with_variables(variables: list[tuple[str, str]]) -> dict[str, str]:
        for name, value in variables:
            monkeypatch.setenv(name, value)
        return ask_each_sdk()

    with sim.serve() as upstream:
        specs = [
            f"anthropic={upstream.anthropic_base_url}",
            f"openai={upstream.openai_base_url}",
            f"gemini={upstream.gemini_base_url}",
        ]
        with serve_proxy(tape_path, "record", upstreams=specs) as proxy:
            recorded = with_variables(proxy.variables)
        assert upstream.request_count == 3
    assert all(recorded.values())
    with serve_proxy(tape_path, "replay") as proxy:
        assert with_variables(proxy.variables) == recorded
    assert proxy.report is not None and (proxy.report.served, proxy.report.divergence) == (3, None)


def test_a_cut_stream_is_cut_the_same_way_on_replay(tape_path: Path) -> None:
    def read_until_cut(base: str) -> bytes:
        got = b""
        with httpx.stream(
            "POST", base + "/v1/messages", content=anthropic_body(stream=True), timeout=10
        ) as response:
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_raw():
                    got += chunk
        return got

    with sim.serve() as upstream:
        upstream.inject(sim.Fault.cut_stream(after_frames=2))
        with serve_proxy(tape_path, "record", upstreams=[upstream.base_url]) as proxy:
            recorded = read_until_cut(proxy.base_url)
    assert b"message_start" in recorded and b"message_stop" not in recorded
    with Tape(tape_path) as tape:
        (exchange,) = tape.exchanges(tape.run().id)
    assert exchange.error is not None  # the cut is on the tape, not just the bytes before it
    with serve_proxy(tape_path, "replay") as proxy:
        assert read_until_cut(proxy.base_url) == recorded
