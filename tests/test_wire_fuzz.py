"""``wire.decode`` raises only ``CodecError``, whatever bytes a tape or a server hands it.

The corpus is real-shaped: for every api, the bytes the encoders produce (JSON and stream, as
the official SDKs parse them) and the responses recorded in the committed fixture tapes.
Hypothesis then mutates them two ways: JSON values swapped for other JSON (a model given as a
list, a count as text, an object where a list was), and raw byte flips, cuts and splices.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seamtape.wire import APIS, CodecError, Step, ToolCall, Usage, decode, encode_response
from test_wire_roundtrip import request

ROOT = Path(__file__).resolve().parent.parent
Sample = tuple[str, bytes, list[tuple[str, str]], bytes]  # url, request, headers, response


def _encoded(api: str, stream: bool) -> Sample:
    step = Step(
        provider=api.split(".")[0],
        api=api,
        model="m-2025-01-01",
        text="Lisbon is mild.",
        tool_calls=[ToolCall("call_1", "find_hotel", {"city": "Lisbon", "nights": 2})],
        stop_reason="tool_use",
        usage=Usage(input_tokens=12, output_tokens=7, cache_read_tokens=3),
    )
    url, body = request(api, stream)
    encoded = encode_response(step, stream=stream)
    return url, body, list(encoded.headers), encoded.body


def _recorded() -> list[Sample]:
    out = []
    for tape in sorted((ROOT / "fixtures").glob("*.tape")):
        with sqlite3.connect(f"file:{tape}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT e.url, q.data, e.response_headers, r.data FROM exchange e "
                "JOIN blob q ON q.hash = e.request_body JOIN blob r ON r.hash = e.response_body "
                "WHERE q.codec = 0 AND r.codec = 0"
            ).fetchall()
        out += [(url, req, [tuple(h) for h in json.loads(hs)], resp) for url, req, hs, resp in rows]
    return out


CORPUS: list[Sample] = [_encoded(api, s) for api in APIS for s in (False, True)] + _recorded()

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*path, i))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _mutate_json(text: bytes, data: st.DataObject) -> bytes:
    """Swap one JSON value for another: in a JSON body, or in one SSE ``data:`` line."""
    lines = text.split(b"\n")
    at = [i for i, line in enumerate(lines) if line.startswith((b"data: {", b"{"))]
    if not at:
        return text
    i = data.draw(st.sampled_from(at))
    prefix = b"data: " if lines[i].startswith(b"data: ") else b""
    value = json.loads(lines[i][len(prefix) :])
    path = data.draw(st.sampled_from(_paths(value)))
    lines[i] = prefix + json.dumps(_replace(value, path, data.draw(JSON_VALUES))).encode()
    return b"\n".join(lines)


def _mutate_bytes(body: bytes, data: st.DataObject) -> bytes:
    if not body:
        return body
    kind = data.draw(st.sampled_from(["flip", "cut", "splice"]))
    at = data.draw(st.integers(0, len(body) - 1))
    if kind == "flip":
        return body[:at] + bytes([body[at] ^ data.draw(st.integers(1, 255))]) + body[at + 1 :]
    if kind == "cut":
        return body[:at]
    return body[:at] + data.draw(st.binary(max_size=16)) + body[at:]


def _decode_only_codec_errors(sample: Sample, request_body: bytes, response: bytes) -> None:
    url, _, headers, _ = sample
    with contextlib.suppress(CodecError):
        decode("POST", url, [], request_body, 200, headers, response)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(CORPUS), data=st.data())
def test_mutated_json_values_raise_only_codec_error(sample: Sample, data: st.DataObject) -> None:
    _, request_body, _, response = sample
    if data.draw(st.booleans()):
        response = _mutate_json(response, data)
    else:
        request_body = _mutate_json(request_body, data)
    _decode_only_codec_errors(sample, request_body, response)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(CORPUS), data=st.data())
def test_mutated_bytes_raise_only_codec_error(sample: Sample, data: st.DataObject) -> None:
    _, request_body, _, response = sample
    _decode_only_codec_errors(sample, request_body, _mutate_bytes(response, data))


def test_the_corpus_decodes_before_it_is_mutated() -> None:
    """The control: every unmutated sample decodes, so the mutations are what fails."""
    assert len(CORPUS) > len(APIS) * 2
    for url, request_body, headers, response in CORPUS:
        decode("POST", url, [], request_body, 200, headers, response)


# 1,000 deep is within what some Pythons' json parser reads (3.12 does); past that, every one
# must refuse it as a CodecError, never a RecursionError
@pytest.mark.parametrize("depth", [10_000, 100_000])
@pytest.mark.parametrize("api", APIS)
def test_deep_nesting_raises_codec_error(api: str, depth: int) -> None:
    url, body = request(api, False)
    deep = b"[" * depth + b"]" * depth
    nested = b'{"model": "m", "messages": ' + deep + b"}"
    for request_body, response in ((body, deep), (nested, b"{}"), (body, nested)):
        with pytest.raises(CodecError):
            decode(
                "POST", url, [], request_body, 200, [("content-type", "application/json")], response
            )
