"""The simulator's server: loopback only, deterministic bytes, clean shutdown, concurrency."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading

import httpx
import pytest

from seamtape import wire
from seamtape.sim import (
    Fault,
    FaultPlan,
    RecordedRequest,
    ScriptedPolicy,
    Simulator,
    StochasticPolicy,
    main,
    serve,
)
from seamtape.sim import server as sim_server

HI = json.dumps(
    {"model": "claude-test", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
).encode()
HI_STREAM = json.dumps({**json.loads(HI), "stream": True}).encode()


# One client for the module: building an httpx.Client (its TLS context) costs ~40 ms.
HTTP = httpx.Client(timeout=10)


def post(sim: Simulator, path: str = "/v1/messages", body: bytes = HI) -> httpx.Response:
    return HTTP.post(
        sim.base_url + path, content=body, headers={"content-type": "application/json"}
    )


def test_binds_loopback_on_an_ephemeral_port() -> None:
    with serve() as sim:
        assert sim.address == ("127.0.0.1", sim.port)
        assert sim.port > 0
        assert sim.base_url == f"http://127.0.0.1:{sim.port}"
        assert sim.openai_base_url == sim.base_url + "/v1"
        assert post(sim).status_code == 200


def test_unknown_path_is_a_json_404() -> None:
    with serve() as sim:
        response = post(sim, "/v2/nothing")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found" and "/v2/nothing" in error["message"]
    assert sim.requests[0].api is None


def test_responses_are_byte_deterministic_across_servers() -> None:
    def run() -> list[tuple[int, list[tuple[str, str]], list[bytes]]]:
        with serve(StochasticPolicy(seed=11)) as sim:
            post(sim)
            post(sim, body=HI_STREAM)
        return [(r.status, r.headers, r.chunks) for r in sim.responses]

    first, second = run(), run()
    assert first == second
    names = {name.lower() for _, headers, _ in first for name, _ in headers}
    assert "date" not in names and "server" not in names
    assert "request-id" in names


BEDROCK = "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0"  # boto3 quotes the colon
GEMINI = "/v1beta/models/gemini-2.5-flash"
ASK = "Say hello"
MESSAGES = {"messages": [{"role": "user", "content": ASK}]}
CONVERSE = {"messages": [{"role": "user", "content": [{"text": ASK}]}]}
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": ASK}]}]}
INVOKE = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 9, **MESSAGES}
ROUTES = [  # (path, body, streamed)
    ("/v1/messages", {"model": "c", "max_tokens": 9, **MESSAGES}, False),
    ("/v1/messages", {"model": "c", "max_tokens": 9, "stream": True, **MESSAGES}, True),
    ("/v1/chat/completions", {"model": "g", **MESSAGES}, False),
    ("/v1/chat/completions", {"model": "g", "stream": True, **MESSAGES}, True),
    ("/v1/responses", {"model": "g", "input": ASK}, False),
    ("/v1/responses", {"model": "g", "input": ASK, "stream": True}, True),
    (GEMINI + ":generateContent", CONTENTS, False),
    (GEMINI + ":streamGenerateContent?alt=sse", CONTENTS, True),
    ("/v1/models/gemini-2.5-flash:generateContent", CONTENTS, False),
    (BEDROCK + "/converse", CONVERSE, False),
    (BEDROCK + "/converse-stream", CONVERSE, True),
    (BEDROCK + "/invoke", INVOKE, False),
    (BEDROCK + "/invoke-with-response-stream", INVOKE, True),
]


@pytest.mark.parametrize(("path", "body", "streamed"), ROUTES)
def test_every_route_answers_with_identical_bytes_on_every_run(
    path: str, body: dict, streamed: bool
) -> None:
    request = json.dumps(body).encode()

    def run() -> tuple[int, list[tuple[str, str]], list[bytes]]:
        with serve(StochasticPolicy(seed=4)) as sim:
            assert post(sim, path, request).status_code == 200
        (response,) = sim.responses
        return response.status, response.headers, response.chunks

    status, headers, chunks = run()
    assert (status, headers, chunks) == run()
    step = wire.decode("POST", "http://h" + path, [], request, status, headers, b"".join(chunks))
    assert f'You asked: "{ASK}"' in step.text and step.stop_reason == "end_turn"
    if streamed:
        assert ("transfer-encoding", "chunked") in headers and len(chunks) > 2
    else:
        assert headers[-1][0] == "content-length" and len(chunks) == 1


def test_request_ids_follow_the_seed_and_the_request_count() -> None:
    def ids(seed: int) -> list[str | None]:
        with serve(StochasticPolicy(seed=seed)) as sim:
            return [post(sim).headers.get("request-id") for _ in range(3)]

    assert ids(1) == ids(1)
    assert len(set(ids(1))) == 3
    assert ids(1) != ids(2)


def test_stop_closes_keepalive_connections_and_joins_threads() -> None:
    before = set(threading.enumerate())
    with serve() as sim, httpx.Client(base_url=sim.base_url) as client:
        for _ in range(3):  # one pooled keep-alive connection stays open
            assert client.post("/v1/messages", content=HI).status_code == 200
        assert len(threading.enumerate()) > len(before)
        port = sim.port
    assert set(threading.enumerate()) <= before
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_serve_is_reentrant() -> None:
    ports = set()
    for _ in range(10):
        with serve() as sim:
            ports.add(sim.port)
            assert post(sim).status_code == 200
    assert len(ports) >= 1
    sim.stop()  # stopping twice is harmless


def test_concurrent_async_requests() -> None:
    async def gather(sim: Simulator) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=sim.base_url) as client:
            calls = [client.post("/v1/messages", content=HI) for _ in range(5)]
            return await asyncio.gather(*calls)

    with serve() as sim:
        responses = asyncio.run(gather(sim))
    assert [r.status_code for r in responses] == [200] * 5
    assert sorted(r.index for r in sim.requests) == [0, 1, 2, 3, 4]
    assert len({r.headers["request-id"] for r in responses}) == 5


def test_a_chunked_request_body_is_accepted() -> None:
    with serve() as sim:
        connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
        connection.request("POST", "/v1/messages", body=iter([HI[:10], HI[10:]]),
                           encode_chunked=True)  # fmt: skip
        assert connection.getresponse().status == 200
        connection.close()
    assert sim.requests[0].body == HI


def test_a_bad_body_gets_the_providers_400() -> None:
    with serve() as sim:
        response = post(sim, body=b"{not json")
    assert response.status_code == 400
    assert response.json()["type"] == "error"


def test_a_failing_policy_gets_the_providers_500() -> None:
    with serve(ScriptedPolicy([])) as sim:
        response = post(sim)
    assert response.status_code == 500
    assert "no turn for request 0" in response.text


def test_faults_by_index_and_by_rule() -> None:
    faults = {1: Fault.server_error(502)}
    with serve(faults=faults) as sim:
        assert [post(sim).status_code for _ in range(3)] == [200, 502, 200]
    rule = lambda request: Fault.rate_limit() if request.index % 2 == 0 else None  # noqa: E731
    with serve(faults=rule) as sim:
        statuses = [post(sim).status_code for _ in range(4)]
    assert statuses == [429, 200, 429, 200]


def test_inject_applies_to_the_next_requests_only() -> None:
    with serve() as sim:
        sim.inject(Fault.rate_limit(retry_after=1.5), times=2)
        first, second, third = (post(sim) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [429, 429, 200]
    assert (first.headers["retry-after"], first.headers["retry-after-ms"]) == ("2", "1500")
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_a_slow_first_byte_times_the_client_out_and_stop_still_returns() -> None:
    with serve() as sim:
        sim.inject(Fault.slow(first_byte=30))
        with pytest.raises(httpx.ReadTimeout), httpx.Client(timeout=0.2) as client:
            client.post(sim.base_url + "/v1/messages", content=HI)
    assert sim.request_count == 1  # and the with block did not wait 30 s to stop


def test_a_cut_json_body_is_truncated() -> None:
    with serve() as sim:
        sim.inject(Fault.cut_stream())
        with pytest.raises(httpx.RemoteProtocolError):
            post(sim)
    (response,) = sim.responses
    assert not response.complete and len(response.body) > 0


def test_main_prints_the_base_urls(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sim_server.time, "sleep", interrupt)
    main(0, "stochastic:seed=2")
    out = capsys.readouterr().out
    assert "http://127.0.0.1:" in out and "OPENAI_BASE_URL=" in out and "/v1" in out


def test_a_slow_stream_sends_the_same_frames() -> None:
    with serve() as sim:
        post(sim, body=HI_STREAM)
        sim.inject(Fault.slow(between_frames=0.005))
        post(sim, body=HI_STREAM)
    fast, slow = sim.responses
    assert slow.complete and len(slow.chunks) > 2
    assert slow.chunks == fast.chunks


def test_fault_plan_precedence() -> None:
    plan = FaultPlan(lambda request: Fault.server_error(502))
    plan.inject(Fault.rate_limit(), times=2)
    plan.at(0, Fault.overloaded())

    def take(index: int) -> Fault | None:
        return plan.take(RecordedRequest(index, "POST", "/", [], b"", None))

    assert [take(i).status_for("anthropic") for i in range(4)] == [529, 429, 429, 502]
    assert Fault.overloaded().status_for("openai") == 503
    plan.clear()
    assert take(4).status == 502  # the rule stays
