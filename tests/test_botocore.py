"""The botocore seam: boto3's bedrock-runtime client recorded against the simulator, replayed
from the tape with the simulator stopped, parsed by botocore's own parsers (event streams too).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.retries.standard
import pytest
from botocore.config import Config

import seamtape
from seamtape import wire
from seamtape._match import REDACTED
from seamtape.sim import Fault, Simulator, StochasticPolicy, serve

MODEL = "anthropic.sim-claude-v1"
QUESTION = "What is the weather in Lisbon?"
WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "inputSchema": {
            "json": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }
        },
    }
}
TOOLS = {"tools": [WEATHER]}
INVOKE_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": QUESTION}],
    }
)
ACCESS_KEY = "AKIDSEAMTAPEEXAMPLE"
SESSION_TOKEN = "session-token-that-must-not-reach-the-tape"


@pytest.fixture(scope="module", autouse=True)
def no_backoff() -> Iterator[None]:
    """botocore draws up to a second of backoff before a retry (it reads x-amz-retry-after,
    not retry-after); the retry decision stays botocore's, only the wait is taken out."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", _no_delay)
        yield


def _no_delay(self: Any, context: Any) -> float:
    return 0.0


def make_client(
    endpoint: str | None, *, key: str = ACCESS_KEY, token: str | None = SESSION_TOKEN
) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key="secret-that-must-not-reach-the-tape",
        aws_session_token=token,
        config=Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )


# --- one small agent per operation -------------------------------------------------------------


def _converse(client: Any) -> list[Any]:
    messages: list[Any] = [{"role": "user", "content": [{"text": QUESTION}]}]
    first = client.converse(modelId=MODEL, messages=messages, toolConfig=TOOLS)
    message = first["output"]["message"]
    (use,) = [b["toolUse"] for b in message["content"] if "toolUse" in b]
    result = {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": "21C"}]}}
    messages += [message, {"role": "user", "content": [result]}]
    second = client.converse(modelId=MODEL, messages=messages, toolConfig=TOOLS)
    return [first, second]


def _converse_stream(client: Any) -> list[Any]:
    messages: list[Any] = [{"role": "user", "content": [{"text": QUESTION}]}]
    first = client.converse_stream(modelId=MODEL, messages=messages, toolConfig=TOOLS)
    first["stream"] = events = list(first["stream"])
    use = next(
        e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e
    )
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    )
    call = {"toolUseId": use["toolUseId"], "name": use["name"], "input": json.loads(arguments)}
    result = {"toolResult": {"toolUseId": use["toolUseId"], "content": [{"text": "21C"}]}}
    messages += [
        {"role": "assistant", "content": [{"toolUse": call}]},
        {"role": "user", "content": [result]},
    ]
    second = client.converse_stream(modelId=MODEL, messages=messages, toolConfig=TOOLS)
    second["stream"] = list(second["stream"])
    return [first, second]


def _invoke(client: Any) -> list[Any]:
    response = client.invoke_model(modelId=MODEL, body=INVOKE_BODY)
    response["body"] = json.loads(response["body"].read())
    return [response]


def _invoke_stream(client: Any) -> list[Any]:
    response = client.invoke_model_with_response_stream(modelId=MODEL, body=INVOKE_BODY)
    response["body"] = [json.loads(e["chunk"]["bytes"]) for e in response["body"]]
    return [response]


@dataclass(frozen=True)
class Operation:
    name: str
    agent: Callable[[Any], list[Any]]
    stream: bool
    turns: int


OPERATIONS = [
    Operation("converse", _converse, False, 2),
    Operation("converse_stream", _converse_stream, True, 2),
    Operation("invoke_model", _invoke, False, 1),
    Operation("invoke_model_with_response_stream", _invoke_stream, True, 1),
]


@dataclass
class Run:
    run_id: str
    outputs: list[Any]
    seen: list[tuple[int, str | None]]  # per attempt: status, request id, as botocore saw it
    stats: dict[str, int]


def _run(session: seamtape.Session, operation: Operation, **client_args: Any) -> Run:
    client = session.attach_botocore(make_client(session.upstream, **client_args))
    seen: list[tuple[int, str | None]] = []

    def watch(response_dict: Any = None, **kwargs: Any) -> None:
        if response_dict is not None:  # None when the attempt raised before a response
            headers = response_dict["headers"]
            seen.append((response_dict["status_code"], headers.get("x-amzn-requestid")))

    client.meta.events.register("response-received.bedrock-runtime", watch)
    outputs = operation.agent(client)
    return Run(session.run_id, outputs, seen, session.stats)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Run | Exception]]:
    """Every operation recorded against one simulator, stopped before any test replays."""
    folder = tmp_path_factory.mktemp("botocore")
    out: dict[str, tuple[Path, Run | Exception]] = {}
    with serve(StochasticPolicy(seed=5, tools_plan=["get_weather"])) as sim:
        for op in OPERATIONS:
            tape = folder / f"{op.name}.tape"
            sim.inject(Fault.rate_limit(retry_after=0))  # botocore retries the throttle itself
            try:
                with seamtape.record(tape, upstream=sim.bedrock_endpoint_url) as session:
                    recorded = _run(session, op)
                out[op.name] = (tape, recorded)
            except Exception as exc:  # reported by this operation's tests only
                out[op.name] = (tape, exc)
    return out


def _recorded(runs: dict[str, Any], op: Operation) -> tuple[Path, Run]:
    tape, run = runs[op.name]
    if isinstance(run, Exception):
        raise run
    return tape, run


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_replay_is_parsed_by_botocore_as_recorded(runs: dict[str, Any], op: Operation) -> None:
    tape, recorded = _recorded(runs, op)
    # Other credentials, another moment: SigV4 material is not part of what is matched.
    with seamtape.replay(tape) as session:
        replayed = _run(session, op, key="AKIDSOMEONEELSE00000", token=None)

    assert recorded.stats == {"served": 0, "live": op.turns + 1}
    assert replayed.stats == {"served": op.turns + 1, "live": 0}
    assert replayed.outputs == recorded.outputs  # ResponseMetadata included: ids, retries
    with seamtape.Tape(tape) as t:
        assert session.digest == t.run(recorded.run_id).digest
    # The throttle and botocore's own retry replay as the same two attempts.
    assert [status for status, _ in recorded.seen] == [429] + [200] * op.turns
    assert replayed.seen == recorded.seen
    metadata = recorded.outputs[0]["ResponseMetadata"]
    assert metadata["RetryAttempts"] == 1
    assert metadata["RequestId"] == recorded.seen[1][1]
    if op.stream:  # botocore's event-stream parser read every frame from the tape
        assert all(len(o.get("stream") or o["body"]) > 3 for o in recorded.outputs)


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_tape_keeps_ids_and_attempts_but_no_signing_material(
    runs: dict[str, Any], op: Operation
) -> None:
    tape, recorded = _recorded(runs, op)
    with seamtape.Tape(tape) as t:
        exchanges = t.exchanges(recorded.run_id)
    assert [ex.status for ex in exchanges] == [429] + [200] * op.turns
    ids = [
        dict((k.lower(), v) for k, v in ex.response_headers)["x-amzn-requestid"] for ex in exchanges
    ]
    assert ids == [request_id for _, request_id in recorded.seen]
    attempts = [dict(ex.request_headers)["amz-sdk-request"] for ex in exchanges[:2]]
    assert attempts == ["attempt=1; max=3", "attempt=2; max=3"]
    for ex in exchanges:
        headers = {k.lower(): v for k, v in ex.request_headers}
        for name in ("authorization", "x-amz-date", "x-amz-security-token"):
            assert headers[name] == REDACTED
    stored = b"".join(p.read_bytes() for p in tape.parent.glob(f"{tape.name}*"))
    for secret in (ACCESS_KEY, SESSION_TOKEN, "AWS4-HMAC-SHA256", "secret-that-must-not"):
        assert secret.encode() not in stored


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_codecs_read_the_recorded_bytes_as_botocore_did(
    runs: dict[str, Any], op: Operation
) -> None:
    tape, recorded = _recorded(runs, op)
    with seamtape.Tape(tape) as t:
        steps = [
            wire.decode(
                ex.method,
                ex.url,
                ex.request_headers,
                ex.request_bytes(),
                ex.status,
                ex.response_headers,
                ex.response_bytes(),
            )
            for ex in t.exchanges(recorded.run_id)
        ]
    assert steps[0].stop_reason == "error" and steps[0].status == 429
    assert [s.stream for s in steps[1:]] == [op.stream] * op.turns
    assert [_text(op, out) for out in recorded.outputs] == [s.text for s in steps[1:]]
    assert all(s.provider == "bedrock" and s.cost_usd for s in steps[1:])
    if op.turns == 2:
        assert [c.name for c in steps[1].tool_calls] == ["get_weather"]
        assert steps[1].stop_reason == "tool_use" and steps[2].stop_reason == "end_turn"


def _text(op: Operation, output: dict[str, Any]) -> str:
    """The answer's text as botocore parsed it, for each operation's shape."""
    if op.name == "converse":
        return "".join(b.get("text", "") for b in output["output"]["message"]["content"])
    if op.name == "converse_stream":
        deltas = [
            e["contentBlockDelta"]["delta"] for e in output["stream"] if "contentBlockDelta" in e
        ]
        return "".join(d.get("text", "") for d in deltas)
    if op.name == "invoke_model":
        return "".join(b.get("text", "") for b in output["body"]["content"])
    return "".join(
        e["delta"].get("text", "") for e in output["body"] if e["type"] == "content_block_delta"
    )


# --- the seam's own behaviour ------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with serve(StochasticPolicy(seed=5, tools_plan=["get_weather"])) as server:
        yield server


def test_a_stream_reaches_botocore_frame_by_frame(sim: Simulator, tmp_path: Path) -> None:
    gate, first_seen = threading.Event(), threading.Event()
    sim.inject(Fault.hold_stream(gate, after_frames=1))
    events: list[Any] = []

    def read(stream: Any) -> None:
        for event in stream:
            events.append(event)
            first_seen.set()

    with seamtape.record(tmp_path / "t.tape", upstream=sim.bedrock_endpoint_url) as session:
        client = session.attach_botocore(make_client(session.upstream))
        messages = [{"role": "user", "content": [{"text": QUESTION}]}]
        response = client.converse_stream(modelId=MODEL, messages=messages)
        reader = threading.Thread(target=read, args=(response["stream"],))
        reader.start()
        # The simulator holds back every frame after the first until the gate opens; a seam
        # that buffered the body would show botocore nothing yet.
        arrived = first_seen.wait(timeout=10)
        held = len(events)
        gate.set()
        reader.join(timeout=10)
    assert arrived and held == 1
    assert len(events) > 2 and "messageStop" in events[-2]


def test_a_cut_stream_replays_as_the_same_error(sim: Simulator, tmp_path: Path) -> None:
    tape = tmp_path / "cut.tape"

    def agent(session: seamtape.Session) -> tuple[list[Any], type[BaseException], str]:
        client = session.attach_botocore(make_client(session.upstream))
        messages = [{"role": "user", "content": [{"text": QUESTION}]}]
        response = client.converse_stream(modelId=MODEL, messages=messages)
        events: list[Any] = []
        with pytest.raises(Exception) as caught:
            events.extend(response["stream"])
        return events, caught.type, str(caught.value)

    sim.inject(Fault.cut_stream(after_frames=2))
    with seamtape.record(tape, upstream=sim.bedrock_endpoint_url) as recording:
        recorded = agent(recording)
    sim.stop()
    with seamtape.replay(tape) as replaying:
        replayed = agent(replaying)
    assert len(recorded[0]) == 2
    assert replayed == recorded
    assert replaying.digest == recording.digest


def test_a_failed_connection_replays_as_the_same_attempts(tmp_path: Path) -> None:
    with serve() as gone:
        endpoint = gone.bedrock_endpoint_url  # a port that nothing listens on once stopped
    tape = tmp_path / "down.tape"

    def agent(session: seamtape.Session) -> tuple[type[BaseException], str]:
        client = session.attach_botocore(make_client(session.upstream))
        with pytest.raises(botocore.exceptions.BotoCoreError) as caught:
            client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
        return caught.type, str(caught.value)

    with seamtape.record(tape, upstream=endpoint) as recording:
        recorded = agent(recording)
    with seamtape.replay(tape) as replaying:
        replayed = agent(replaying)
    assert recorded[0] is botocore.exceptions.EndpointConnectionError
    assert replayed == recorded
    assert recording.stats["live"] == replaying.stats["served"] == 3  # each attempt recorded
    with seamtape.Tape(tape) as t:
        assert {ex.status for ex in t.exchanges(recording.run_id)} == {0}


def test_the_client_is_detached_when_the_block_exits(sim: Simulator, tmp_path: Path) -> None:
    tape = tmp_path / "t.tape"
    messages = [{"role": "user", "content": [{"text": QUESTION}]}]
    with seamtape.record(tape, upstream=sim.bedrock_endpoint_url) as session:
        client = session.attach_botocore(make_client(session.upstream))
        client.converse(modelId=MODEL, messages=messages)
    client.converse(modelId=MODEL, messages=messages)  # straight to the simulator now
    assert sim.request_count == 2
    with seamtape.Tape(tape) as t:
        assert len(t.exchanges(session.run_id)) == 1


def test_an_unrecorded_request_diverges_instead_of_reaching_the_network(
    sim: Simulator, tmp_path: Path
) -> None:
    tape = tmp_path / "t.tape"
    with seamtape.record(tape, upstream=sim.bedrock_endpoint_url) as session:
        client = session.attach_botocore(make_client(session.upstream))
        client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    with pytest.raises(seamtape.DivergenceError) as caught:
        with seamtape.replay(tape) as replaying:
            client = replaying.attach_botocore(make_client(replaying.upstream))
            client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "yo"}]}])
    assert "$.messages[0].content[0].text" in str(caught.value)
    assert sim.request_count == 1  # the simulator is up, and still nothing reached it


def test_a_fork_serves_the_prefix_substitutes_a_step_and_sends_the_tail_elsewhere(
    sim: Simulator, tmp_path: Path
) -> None:
    tape = tmp_path / "t.tape"

    def agent(session: seamtape.Session) -> list[Any]:
        client = session.attach_botocore(make_client(session.upstream))
        return [o["output"]["message"]["content"] for o in _converse(client)]

    with seamtape.record(tape, upstream=sim.bedrock_endpoint_url) as session:
        session.result = agent(session)
    edited = seamtape.fork(tape, step=2, agent=agent, edit={"text": "It is snowing."})
    assert edited.result == [session.result[0], [{"text": "It is snowing."}]]
    assert (edited.served, edited.live) == (1, 0)
    with serve(StochasticPolicy(seed=9)) as other:
        resampled = seamtape.fork(
            tape, step=2, agent=agent, resample=True, upstream=other.bedrock_endpoint_url
        )
        assert other.request_count == 1  # the live step went to the fork's upstream
    assert resampled.result[0] == session.result[0] and (resampled.served, resampled.live) == (1, 1)
    assert sim.request_count == 2


def test_a_client_tees_into_one_session_at_a_time(sim: Simulator, tmp_path: Path) -> None:
    messages = [{"role": "user", "content": [{"text": QUESTION}]}]
    client = make_client(sim.bedrock_endpoint_url)
    with seamtape.record(tmp_path / "a.tape", upstream=sim.bedrock_endpoint_url) as session:
        session.attach_botocore(client)
        session.attach_botocore(client)  # twice: still one exchange per request
        client.converse(modelId=MODEL, messages=messages)
        assert session.stats["live"] == 1
        with seamtape.record(tmp_path / "b.tape") as other:
            with pytest.raises(seamtape.SeamtapeError, match="another open session"):
                other.attach_botocore(client)
    with seamtape.record(tmp_path / "c.tape") as later:  # detached: free to attach again
        later.attach_botocore(client)
        client.converse(modelId=MODEL, messages=messages)
        assert later.stats["live"] == 1
