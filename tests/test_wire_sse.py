"""SSE framing: build then parse is the identity; parsing follows the event-stream rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamtape.wire import CodecError, sse

names = st.none() | st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), min_size=1
)
datas = st.text(st.characters(blacklist_characters="\r", blacklist_categories=["Cs"]))


@given(events=st.lists(st.tuples(names, datas), max_size=8), crlf=st.booleans())
def test_build_then_parse_is_identity(events: list[tuple[str | None, str]], crlf: bool) -> None:
    body = b"".join(sse.build(data, name, eol="\r\n" if crlf else "\n") for name, data in events)
    assert sse.parse(body) == [sse.Event(data=data, event=name) for name, data in events]


@given(data=datas, cut=st.integers(min_value=1))
def test_a_truncated_last_event_is_not_dispatched(data: str, cut: int) -> None:
    first, second = sse.build("first", "a"), sse.build(data, "b")
    cut = cut % len(second) or 1  # keep at least one byte, lose at least the final newline
    assert sse.parse(first + second[:-cut]) == [sse.Event("first", "a")]


def test_parse_follows_the_spec() -> None:
    body = (
        b": a comment line\n"
        b"event: message_start\r\n"
        b"data:no space\r\n"
        b"data:  two spaces\r\n"
        b"id: 7\r\n"
        b"\r\n"
        b"event: only-a-name\n\n"  # no data: not dispatched
        b"data: cr endings\r\r"
        b"event:\ndata: x\n\n"  # an empty name means no name
    )
    assert sse.parse(body) == [
        sse.Event("no space\n two spaces", "message_start"),
        sse.Event("cr endings"),
        sse.Event("x"),
    ]


def test_invalid_utf8_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match="SSE line 1 is not valid UTF-8"):
        sse.parse(b"data: \xff\n\n")


@pytest.mark.parametrize(("data", "event"), [("a\rb", None), ("x", "two\nlines")])
def test_build_refuses_what_sse_cannot_carry(data: str, event: str | None) -> None:
    with pytest.raises(ValueError):
        sse.build(data, event)
