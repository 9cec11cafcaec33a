"""AWS event-stream framing: build then parse is the identity, botocore reads what we build,
and any corruption or truncation is caught."""

from __future__ import annotations

import struct

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from seamtape.wire import CodecError, eventstream
from seamtape.wire.eventstream import Header, HeaderType

_INT_RANGES = {
    HeaderType.BYTE: 7,
    HeaderType.SHORT: 15,
    HeaderType.INTEGER: 31,
    HeaderType.LONG: 63,
    HeaderType.TIMESTAMP: 63,
}


@st.composite
def headers(draw: st.DrawFn) -> Header:
    name = draw(
        st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40).filter(
            lambda n: len(n.encode()) < 256
        )
    )
    kind = draw(st.sampled_from(HeaderType))
    if kind in (HeaderType.TRUE, HeaderType.FALSE):
        value: object = kind is HeaderType.TRUE
    elif kind in _INT_RANGES:
        bits = _INT_RANGES[kind]
        value = draw(st.integers(-(2**bits), 2**bits - 1))
    elif kind is HeaderType.UUID:
        value = draw(st.binary(min_size=16, max_size=16))
    elif kind is HeaderType.BYTES:
        value = draw(st.binary(max_size=300))
    else:
        value = draw(st.text(st.characters(blacklist_categories=["Cs"]), max_size=100))
    return Header(name, value, kind)  # type: ignore[arg-type]


header_lists = st.lists(headers(), max_size=6, unique_by=lambda h: h.name)
messages = st.tuples(header_lists, st.binary(max_size=2000))


@given(st.lists(messages, min_size=1, max_size=4))
def test_build_then_parse_is_identity(batch: list[tuple[list[Header], bytes]]) -> None:
    data = b"".join(eventstream.build(h, payload) for h, payload in batch)
    assert eventstream.parse(data) == [
        eventstream.Message(tuple(h), payload) for h, payload in batch
    ]


@given(st.lists(messages, min_size=1, max_size=4), st.integers(min_value=1, max_value=97))
def test_botocore_parses_what_we_build(batch: list[tuple[list[Header], bytes]], split: int) -> None:
    buffer = EventStreamBuffer()
    data = b"".join(eventstream.build(h, payload) for h, payload in batch)
    parsed = []
    for start in range(0, len(data), split):  # fed in arbitrary pieces, as a socket would
        buffer.add_data(data[start : start + split])
        parsed.extend(buffer)
    assert [(m.headers, m.payload) for m in parsed] == [
        ({h.name: h.value for h in hs}, payload) for hs, payload in batch
    ]


@given(messages, st.data())
def test_any_single_bit_flip_is_detected(
    message: tuple[list[Header], bytes], data: st.DataObject
) -> None:
    raw = bytearray(eventstream.build(*message))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CodecError, match="event-stream message 1"):
        eventstream.parse(bytes(raw))


@given(messages, st.data())
def test_truncation_is_detected(message: tuple[list[Header], bytes], data: st.DataObject) -> None:
    raw = eventstream.build(*message)
    cut = data.draw(st.integers(1, len(raw) - 1))
    with pytest.raises(CodecError, match="truncated"):
        eventstream.parse(raw[:cut])


def test_known_message_layout() -> None:
    raw = eventstream.build({":event-type": "chunk"}, b"{}")
    total, headers_length = struct.unpack("!II", raw[:8])
    assert (total, headers_length, len(raw)) == (
        12 + headers_length + 2 + 4,
        1 + 11 + 1 + 2 + 5,
        total,
    )
    assert raw[12:].startswith(b"\x0b:event-type\x07\x00\x05chunk")
    assert eventstream.parse(raw)[0].header(":event-type") == "chunk"


def test_corrupted_prelude_crc_is_named() -> None:
    raw = bytearray(eventstream.build({"a": "b"}, b"payload"))
    raw[9] ^= 0xFF
    with pytest.raises(CodecError, match="message 1 at byte 0: prelude CRC mismatch"):
        eventstream.parse(bytes(raw))


def test_payload_corruption_in_a_later_message_is_located() -> None:
    first = eventstream.build({"a": "b"}, b"one")
    second = bytearray(eventstream.build({"a": "b"}, b"two"))
    second[-6] ^= 1
    with pytest.raises(CodecError, match=f"message 2 at byte {len(first)}: message CRC mismatch"):
        eventstream.parse(first + bytes(second))


@pytest.mark.parametrize(
    "bad",
    [
        Header("n", 1 << 40, HeaderType.INTEGER),
        Header("n", b"short", HeaderType.UUID),
        Header("n", "s", HeaderType.BYTES),
        Header("", "v"),
    ],
)
def test_build_refuses_headers_the_format_cannot_hold(bad: Header) -> None:
    with pytest.raises(ValueError):
        eventstream.build([bad], b"")
