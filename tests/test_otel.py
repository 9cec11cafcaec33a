"""OpenTelemetry export and ingest: a recorded tool-using run as an OTLP GenAI trace, parsed
back with opentelemetry-proto, its attribute names checked against
opentelemetry-semantic-conventions, pushed to a local OTLP/HTTP receiver, and ingested."""

from __future__ import annotations

import ast
import base64
import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.semconv import attributes as stable_attributes
from opentelemetry.semconv._incubating import attributes as incubating_attributes

import seamtape
from seamtape import sim
from seamtape._errors import NotReplayableError, SeamtapeError
from seamtape._steps import steps_of
from seamtape.engine.blame import BlameReport, StepBlame
from seamtape.faces._demo import trip_agent
from seamtape.lenses import otel
from seamtape.tape import Tape

PROMPT_MARK = "weekend in Lisbon"


# --- a recorded run to export -----------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tool-using run (two tool calls, then an answer), a rate-limited call and a stream."""
    tape = tmp_path_factory.mktemp("otel") / "trip.tape"
    script = sim.ScriptedPolicy(
        [
            [
                {"name": "get_weather", "arguments": {"city": "Lisbon"}},
                {"name": "find_hotel", "arguments": {"city": "Lisbon", "budget": 150}},
            ],
            "Sunny; Hotel Miradouro fits the budget.",
            "A streamed postscript.",
        ]
    )
    with sim.serve(script) as server:
        with seamtape.record(tape, name="trip-planner", upstream=server.anthropic_base_url) as rec:
            rec.result = trip_agent(rec)
            server.inject(sim.Fault.rate_limit(retry_after=0))
            with rec.httpx2_client() as client:
                body = {
                    "model": "sim-claude",
                    "max_tokens": 64,
                    "stream": True,
                    "messages": [{"role": "user", "content": "and a postscript?"}],
                }
                for _ in range(2):  # the 429, then the stream
                    client.post(server.anthropic_base_url + "/v1/messages", json=body).read()
    return tape


def seamtape_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The command line as a user runs it (through ``main``, which turns errors into exit
    codes); returns the exit code and stdout and stderr, joined, with wrapping undone."""
    from seamtape.faces.cli import main

    saved = sys.argv
    sys.argv = ["seamtape", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = saved
    captured = capsys.readouterr()
    text = (captured.out + captured.err).translate({ord(c): " " for c in "│╭╮╰╯─"})
    return code, " ".join(text.split())


def exported_json(tape: Path, tmp_path: Path, **options: Any) -> dict[str, Any]:
    out = tmp_path / "trace.json"
    otel.write_trace(otel.export_trace(tape, **options), out)
    return json.loads(out.read_text())


def parse_otlp_json(doc: dict[str, Any]) -> ExportTraceServiceRequest:
    """OTLP JSON parsed by protobuf's own JSON mapping, strictly (no unknown field allowed).

    The OTLP spec writes trace and span ids in hex where protobuf's mapping has base64; that
    one difference is undone here, independently of the code under test."""

    def ids(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId")
                else ids(v)
                for k, v in node.items()
            }
        return [ids(v) for v in node] if isinstance(node, list) else node

    return json_format.ParseDict(ids(doc), ExportTraceServiceRequest())


def attrs(kvs: Any) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        value = getattr(kv.value, kind)
        if kind == "array_value":
            value = [getattr(v, v.WhichOneof("value")) for v in value.values]
        out[kv.key] = value
    return out


def spans_of(request: ExportTraceServiceRequest) -> list[Span]:
    return [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]


# --- export -----------------------------------------------------------------------------------


def test_an_exported_trace_parses_and_carries_the_genai_attributes(
    recorded: Path, tmp_path: Path
) -> None:
    request = parse_otlp_json(exported_json(recorded, tmp_path))
    spans = spans_of(request)
    with Tape(recorded) as tape:
        run = tape.run()
        steps = steps_of(tape, run.id)
        exchanges = tape.exchanges(run.id)
    (root,) = [s for s in spans if not s.parent_span_id]
    calls = [s for s in spans if s.kind == Span.SpanKind.SPAN_KIND_CLIENT]
    assert len(calls) == len(exchanges) == 4
    assert attrs(root.attributes)["gen_ai.operation.name"] == "invoke_agent"
    assert attrs(root.attributes)["gen_ai.agent.name"] == "trip-planner"
    assert {s.trace_id for s in spans} == {root.trace_id}
    assert all(s.parent_span_id == root.span_id for s in spans if s is not root)

    for span, step, ex in zip(calls, steps, exchanges, strict=True):
        a = attrs(span.attributes)
        assert step is not None
        assert span.name == f"chat {a['gen_ai.request.model']}"
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "anthropic"
        assert a["gen_ai.request.model"] == "sim-claude"
        assert a["http.response.status_code"] == ex.status
        assert span.start_time_unix_nano == round(ex.started * 1e9)
        if ex.status != 200:
            assert a["error.type"] and span.status.code == span.status.STATUS_CODE_ERROR
            continue
        assert a["gen_ai.response.model"] == step.model
        assert a["gen_ai.response.id"] == step.response_id and step.response_id
        assert a["gen_ai.response.finish_reasons"] == [step.stop_reason]
        usage = step.usage
        assert a["gen_ai.usage.input_tokens"] == (
            usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        )
        assert a["gen_ai.usage.output_tokens"] == usage.output_tokens > 0
    assert [attrs(s.attributes).get("gen_ai.request.stream") for s in calls] == [
        False,
        False,
        True,
        True,
    ]
    assert attrs(calls[0].attributes)["gen_ai.request.max_tokens"] == 512


def test_tool_executions_are_child_spans_between_the_calls(recorded: Path, tmp_path: Path) -> None:
    spans = spans_of(parse_otlp_json(exported_json(recorded, tmp_path)))
    calls = [s for s in spans if s.kind == Span.SpanKind.SPAN_KIND_CLIENT]
    tools = [s for s in spans if attrs(s.attributes).get("gen_ai.operation.name") == "execute_tool"]
    with Tape(recorded) as tape:
        first = steps_of(tape, tape.run().id)[0]
    assert first is not None
    assert [attrs(t.attributes)["gen_ai.tool.name"] for t in tools] == [
        c.name for c in first.tool_calls
    ]
    assert [attrs(t.attributes)["gen_ai.tool.call.id"] for t in tools] == [
        c.id for c in first.tool_calls
    ]
    assert [t.name for t in tools] == ["execute_tool get_weather", "execute_tool find_hotel"]
    for tool in tools:
        assert tool.parent_span_id == calls[0].parent_span_id  # the agent's, beside the calls
        assert calls[0].end_time_unix_nano <= tool.start_time_unix_nano
        assert tool.end_time_unix_nano <= calls[1].start_time_unix_nano


def test_message_content_is_exported_only_when_asked_for(recorded: Path, tmp_path: Path) -> None:
    plain = exported_json(recorded, tmp_path)
    assert PROMPT_MARK not in json.dumps(plain)
    assert "gen_ai.input.messages" not in json.dumps(plain)
    assert all(not s.events for s in spans_of(parse_otlp_json(plain)))

    spans = spans_of(parse_otlp_json(exported_json(recorded, tmp_path, content=True)))
    first = next(s for s in spans if s.kind == Span.SpanKind.SPAN_KIND_CLIENT)
    (event,) = first.events
    assert event.name == "gen_ai.client.inference.operation.details"
    details = attrs(event.attributes)
    inputs = json.loads(details["gen_ai.input.messages"])
    assert inputs[0]["role"] == "user" and PROMPT_MARK in inputs[0]["parts"][0]["content"]
    outputs = json.loads(details["gen_ai.output.messages"])
    assert [p["name"] for p in outputs[0]["parts"] if p["type"] == "tool_call"] == [
        "get_weather",
        "find_hotel",
    ]
    tool = next(s for s in spans if s.name == "execute_tool get_weather")
    assert "Lisbon" in attrs(tool.attributes)["gen_ai.tool.call.result"]


def test_the_same_tape_exports_the_same_trace(recorded: Path, tmp_path: Path) -> None:
    assert exported_json(recorded, tmp_path) == exported_json(recorded, tmp_path)


# --- the attribute names, against opentelemetry-semantic-conventions -------------------------


def _convention_names() -> tuple[set[str], dict[str, str]]:
    """Every attribute name the package defines, and the ones its docs mark as superseded."""
    names: set[str] = set()
    superseded: dict[str, str] = {}
    for package in (stable_attributes, incubating_attributes):
        sources = [f for folder in package.__path__ for f in Path(folder).glob("*_attributes.py")]
        for source in sources:
            body = ast.parse(source.read_text()).body
            for node, after in zip(body, [*body[1:], None], strict=True):
                if not (isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Constant)):
                    continue
                name = str(node.value.value)
                names.add(name)
                doc = ast.literal_eval(after.value) if isinstance(after, ast.Expr) else ""
                if isinstance(doc, str) and ("Replaced by" in doc or "Removed" in doc):
                    superseded[name] = doc.strip().splitlines()[0]
    return names, superseded


def _convention_problems(keys: set[str]) -> list[str]:
    names, superseded = _convention_names()
    problems = []
    for key in sorted(keys):
        if key.startswith("seamtape."):
            continue  # our own namespace
        if key not in names:
            problems.append(f"{key}: not defined by the semantic conventions")
        elif key in superseded:
            problems.append(f"{key}: {superseded[key]}")
    return problems


def test_every_attribute_name_is_a_current_semantic_convention(
    recorded: Path, tmp_path: Path
) -> None:
    request = parse_otlp_json(exported_json(recorded, tmp_path, content=True))
    keys = {kv.key for r in request.resource_spans for kv in r.resource.attributes}
    for span in spans_of(request):
        keys |= {kv.key for kv in span.attributes}
        keys |= {kv.key for e in span.events for kv in e.attributes}
    assert {"gen_ai.operation.name", "gen_ai.usage.input_tokens", "service.name"} <= keys
    assert _convention_problems(keys) == []
    # The check can fail: an older name and a made-up one are both caught.
    assert len(_convention_problems({"gen_ai.usage.prompt_tokens", "gen_ai.made_up"})) == 2


# --- blame and lint ---------------------------------------------------------------------------


def test_blame_and_lint_results_become_attributes_of_their_steps(
    recorded: Path, tmp_path: Path
) -> None:
    with Tape(recorded) as tape:
        run_id = tape.run().id
    report = BlameReport(
        run_id=run_id,
        parent_success=False,
        steps=[
            StepBlame(step=2, trials=8, flips=7, flip_rate=0.875, low=0.53, high=0.98),
            StepBlame(step=1, trials=8, flips=1, flip_rate=0.125, low=0.02, high=0.47),
        ],
        live_calls=16,
        cost_usd=0.0,
        estimated_calls=16,
        estimated_cost=0.0,
        uniform_calls=40,
        stopped="settled",
    )
    blame = json.loads(report.to_json())
    lint = [
        {"rule": "retry-storm", "severity": "warning", "step": 3, "message": "429 then retry"},
        {"rule": "budget", "severity": "error", "message": "over budget"},
    ]
    spans = spans_of(parse_otlp_json(exported_json(recorded, tmp_path, blame=blame, lint=lint)))
    by_step = {
        attrs(s.attributes)["seamtape.step"]: attrs(s.attributes)
        for s in spans
        if s.kind == Span.SpanKind.SPAN_KIND_CLIENT
    }
    assert by_step[2]["seamtape.blame.rank"] == 1
    assert by_step[2]["seamtape.blame.flip_rate"] == 0.875
    assert (by_step[2]["seamtape.blame.ci_low"], by_step[2]["seamtape.blame.ci_high"]) == (
        0.53,
        0.98,
    )
    assert by_step[1]["seamtape.blame.rank"] == 2
    assert "seamtape.blame.rank" not in by_step[3]
    assert by_step[3]["seamtape.lint.rules"] == ["retry-storm"]
    root = attrs(next(s for s in spans if not s.parent_span_id).attributes)
    assert root["seamtape.lint.rules"] == ["budget"]

    with pytest.raises(SeamtapeError, match="not being exported"):
        otel.export_trace(recorded, blame={**blame, "run_id": "ffffffffffff"})
    with pytest.raises(SeamtapeError, match="not a blame JSON report"):
        otel.export_trace(recorded, blame={"oops": 1})


# --- OTLP/HTTP --------------------------------------------------------------------------------


class Receiver:
    """A local OTLP/HTTP trace receiver on 127.0.0.1: decodes what arrives with
    opentelemetry-proto and answers as a collector does."""

    def __init__(self, rejected: int = 0) -> None:
        self.received: list[tuple[str, str, ExportTraceServiceRequest]] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest.FromString(body)
                receiver.received.append((self.path, self.headers["content-type"], request))
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                answer = ExportTraceServiceResponse()
                answer.partial_success.rejected_spans = rejected
                data = answer.SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def test_a_trace_pushed_over_otlp_http_arrives_intact(recorded: Path, receiver: Receiver) -> None:
    trace = otel.export_trace(recorded, content=True)
    sent = otel.push_trace(trace, receiver.url)
    ((path, content_type, arrived),) = receiver.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert arrived == trace
    assert sent == len(spans_of(arrived)) > 4


def test_the_cli_sends_to_an_endpoint_and_a_collector_that_is_down_is_one_line(
    recorded: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = receiver.url + "/v1/traces"
    code, out = seamtape_cli(
        capsys,
        "export",
        str(recorded),
        "--otel",
        "--otlp-endpoint",
        endpoint,
        "--otlp-header",
        "Authorization=Basic abc",
    )
    assert code == 0 and "sent" in out
    assert len(receiver.received) == 1
    assert receiver.headers[0]["authorization"] == "Basic abc"
    receiver.stop()
    code, out = seamtape_cli(capsys, "export", str(recorded), "--otel", "--otlp-endpoint", endpoint)
    assert code == 2 and out.startswith("error: cannot send the trace") and "Traceback" not in out
    picky = Receiver(rejected=2)
    try:
        with pytest.raises(SeamtapeError, match="rejected 2 of"):
            otel.push_trace(otel.export_trace(recorded), picky.url)
    finally:
        picky.stop()


# --- the command line -------------------------------------------------------------------------


def test_export_is_json_lines_by_default_and_otel_with_its_flag(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = seamtape_cli(capsys, "export", str(recorded), "-o", str(tmp_path / "x.jsonl"))
    assert code == 0
    header = json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])
    assert header["format"] == "seamtape-runs"
    code, out = seamtape_cli(capsys, "export", str(recorded), "--otel")
    assert code == 2 and "-o FILE" in out
    code, out = seamtape_cli(
        capsys, "export", str(recorded), "--otel", "-o", str(tmp_path / "t.json")
    )
    assert code == 0 and "wrote" in out
    parse_otlp_json(json.loads((tmp_path / "t.json").read_text()))


# --- ingest -----------------------------------------------------------------------------------


def test_an_ingested_trace_has_the_steps_shows_and_refuses_replay(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.json"
    otel.write_trace(otel.export_trace(recorded, content=True), trace)
    ingested = tmp_path / "ingested.tape"
    code, out = seamtape_cli(capsys, "ingest", str(trace), "-o", str(ingested))
    assert code == 0 and "not replayable" in out

    with Tape(recorded) as tape:
        original = steps_of(tape, tape.run().id)
    with Tape(ingested) as tape:
        (run,) = tape.runs()
        steps = steps_of(tape, run.id)
    assert run.status == otel.INGESTED
    assert run.name == "trip-planner (ingested)"
    assert len(steps) == len(original)
    for new, old in zip(steps, original, strict=True):
        assert new is not None and old is not None
        assert (new.provider, new.model, new.stop_reason) == (
            old.provider,
            old.model,
            old.stop_reason,
        )
        assert asdict(new.usage) == asdict(old.usage)
        assert new.stream == old.stream
        assert [(c.id, c.name, c.arguments) for c in new.tool_calls] == [
            (c.id, c.name, c.arguments) for c in old.tool_calls
        ]
        if old.stop_reason != "error":
            assert new.text == old.text and new.response_id == old.response_id
        assert [m.text for m in new.messages] == [m.text for m in old.messages]

    code, out = seamtape_cli(capsys, "show", str(ingested))
    assert code == 0 and "not replayable" in out and "get_weather" in out

    with pytest.raises(NotReplayableError, match="ingested from a trace"):
        with seamtape.replay(ingested):
            pass
    code, out = seamtape_cli(capsys, "replay", str(ingested), "--agent", "agents_for_cli:ask")
    assert code == 2 and out.startswith("error: run") and "cannot be replayed" in out

    # The run diff, a lens, reads it: every step aligns with the recorded run's.
    difference = seamtape.diff(recorded, ingested)
    assert len(difference.pairs) == len(original)
    assert all(p.a is not None and p.b is not None for p in difference.pairs)


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, list):
        any_value = AnyValue()
        any_value.array_value.values.extend(AnyValue(string_value=v) for v in value)
        return KeyValue(key=key, value=any_value)
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def test_a_trace_from_another_instrumentation_ingests_from_protobuf(tmp_path: Path) -> None:
    """An older-style trace: gen_ai.system, no content, a tool span between two calls."""
    trace_id = bytes(range(16))

    def span(n: int, name: str, start: int, end: int, **attributes: Any) -> Span:
        return Span(
            trace_id=trace_id,
            span_id=bytes([n]) * 8,
            parent_span_id=b"\x09" * 8,
            name=name,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            attributes=[_kv(k.replace("__", "."), v) for k, v in attributes.items()],
        )

    common = {"gen_ai__system": "openai", "gen_ai__request__model": "gpt-4o"}
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            span(
                                1,
                                "chat gpt-4o",
                                10**18,
                                10**18 + 5,
                                gen_ai__operation__name="chat",
                                gen_ai__usage__input_tokens=30,
                                gen_ai__usage__output_tokens=7,
                                gen_ai__response__finish_reasons=["tool_calls"],
                                **common,
                            ),
                            span(
                                2,
                                "execute_tool lookup",
                                10**18 + 6,
                                10**18 + 8,
                                gen_ai__operation__name="execute_tool",
                                gen_ai__tool__name="lookup",
                                gen_ai__tool__call__id="call_1",
                            ),
                            span(
                                3,
                                "chat gpt-4o",
                                10**18 + 9,
                                10**18 + 20,
                                gen_ai__operation__name="chat",
                                gen_ai__usage__input_tokens=50,
                                gen_ai__usage__output_tokens=12,
                                gen_ai__response__finish_reasons=["stop"],
                                **common,
                            ),
                        ]
                    )
                ]
            )
        ]
    )
    source = tmp_path / "trace.pb"
    source.write_bytes(request.SerializeToString())
    report = otel.ingest_trace(source, tmp_path / "t.tape")
    assert (len(report.runs), report.steps) == (1, 2)
    with Tape(tmp_path / "t.tape") as tape:
        first, second = steps_of(tape, report.runs[0])
    assert first is not None and second is not None
    assert (first.provider, first.model, first.stop_reason) == ("openai", "gpt-4o", "tool_use")
    assert [(c.id, c.name) for c in first.tool_calls] == [("call_1", "lookup")]
    assert (second.usage.input_tokens, second.usage.output_tokens) == (50, 12)
    assert second.stop_reason == "end_turn"


def test_ingesting_what_is_not_a_genai_trace_is_one_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"resourceSpans": 3}')
    out = tmp_path / "out.tape"
    code, said = seamtape_cli(capsys, "ingest", str(junk), "-o", str(out))
    assert code == 2 and "not an OTLP JSON trace" in said
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"resourceSpans": []}))
    with pytest.raises(SeamtapeError, match="no GenAI model-call span"):
        otel.ingest_trace(empty, out)
    assert not out.exists()


def test_the_command_line_loads_no_opentelemetry_until_a_trace_is_asked_for() -> None:
    import subprocess

    heavy = ["opentelemetry", "google.protobuf", "http.server"]
    probe = (
        "import sys, seamtape, seamtape.faces.cli, seamtape.engine.proxy; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_forks_trace_links_to_its_parents(recorded: Path, tmp_path: Path) -> None:
    import shutil

    tape = tmp_path / "forked.tape"
    shutil.copy(recorded, tape)
    with Tape(tape) as t:
        parent = t.run().id
    forked = seamtape.fork(tape, parent, step=2, agent=trip_agent, edit={"text": "No hotel."})
    request = otel.export_trace(tape)
    roots = {
        attrs(s.attributes)["seamtape.run.id"]: s for s in spans_of(request) if not s.parent_span_id
    }
    child, origin = roots[forked.run_id], roots[parent]
    (link,) = child.links
    assert (link.trace_id, link.span_id) == (origin.trace_id, origin.span_id)
    assert child.trace_id != origin.trace_id
    assert attrs(child.attributes)["seamtape.run.fork_step"] == 2
    assert attrs(child.attributes)["seamtape.run.parent"] == parent


def test_blame_and_lint_files_on_the_command_line(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lint = tmp_path / "lint.json"
    lint.write_text(json.dumps({"findings": [{"rule": "loop", "step": 2, "message": "again"}]}))
    out = tmp_path / "trace.json"
    code, said = seamtape_cli(
        capsys, "export", str(recorded), "--otel", "-o", str(out), "--lint", str(lint)
    )
    assert code == 0, said
    spans = spans_of(parse_otlp_json(json.loads(out.read_text())))
    step_two = next(
        s
        for s in spans
        if attrs(s.attributes).get("seamtape.step") == 2
        and s.kind == Span.SpanKind.SPAN_KIND_CLIENT
    )
    assert attrs(step_two.attributes)["seamtape.lint.rules"] == ["loop"]

    (tmp_path / "bad.json").write_text("{not json")
    code, said = seamtape_cli(
        capsys,
        "export",
        str(recorded),
        "--otel",
        "-o",
        str(out),
        "--blame",
        str(tmp_path / "bad.json"),
    )
    assert code == 2 and "is not JSON" in said


def test_a_trace_the_opentelemetry_sdk_made_ingests(tmp_path: Path) -> None:
    """Spans made the way GenAI instrumentations make them, with the SDK's own tracer and
    ids, encoded by the OTLP exporter's own encoder, then written as OTLP JSON."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("a.genai.instrumentation")
    with tracer.start_as_current_span("invoke_agent support-bot") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        agent.set_attribute("gen_ai.agent.name", "support-bot")
        with tracer.start_as_current_span("chat claude-x", kind=SpanKind.CLIENT) as call:
            call.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "anthropic",
                    "gen_ai.request.model": "claude-x",
                    "gen_ai.response.model": "claude-x-2026",
                    "gen_ai.response.id": "msg_1",
                    "gen_ai.response.finish_reasons": ["tool_use"],
                    "gen_ai.usage.input_tokens": 120,
                    "gen_ai.usage.cache_read.input_tokens": 100,
                    "gen_ai.usage.output_tokens": 9,
                    "gen_ai.output.messages": json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [
                                    {
                                        "type": "tool_call",
                                        "id": "tu_1",
                                        "name": "refund",
                                        "arguments": {"order": 42},
                                    }
                                ],
                                "finish_reason": "tool_use",
                            }
                        ]
                    ),
                }
            )
        with tracer.start_as_current_span("execute_tool refund") as tool:
            tool.set_attributes(
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "refund",
                    "gen_ai.tool.call.id": "tu_1",
                }
            )
        with tracer.start_as_current_span("chat claude-x", kind=SpanKind.CLIENT) as call:
            call.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "anthropic",
                    "gen_ai.request.model": "claude-x",
                    "gen_ai.response.finish_reasons": ["end_turn"],
                    "gen_ai.usage.input_tokens": 140,
                    "gen_ai.usage.output_tokens": 20,
                }
            )
    source = tmp_path / "sdk-trace.json"
    source.write_text(otel.trace_to_json(encode_spans(exporter.get_finished_spans())))

    report = otel.ingest_trace(source, tmp_path / "sdk.tape")
    assert (len(report.runs), report.steps) == (1, 2)
    with Tape(tmp_path / "sdk.tape") as tape:
        run = tape.run(report.runs[0])
        first, second = steps_of(tape, run.id)
    assert run.name == "support-bot (ingested)" and run.status == otel.INGESTED
    assert first is not None and second is not None
    assert (first.provider, first.model, first.response_id) == (
        "anthropic",
        "claude-x-2026",
        "msg_1",
    )
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [
        ("tu_1", "refund", {"order": 42})
    ]
    assert (first.usage.input_tokens, first.usage.cache_read_tokens) == (20, 100)
    assert (second.stop_reason, second.usage.output_tokens) == ("end_turn", 20)
