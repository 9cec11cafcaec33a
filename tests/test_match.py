"""What counts when a replayed request is compared with the tape, and how a difference is named."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from seamtape._match import canonical_url, explain


def _params(url: str) -> list[str]:
    return urlsplit(url).query.split("&")


@pytest.mark.parametrize("name", ["key", "api_key"])
def test_api_keys_in_the_query_string_are_masked(name: str) -> None:
    secret = "AIzaSyA-not-a-real-key-0123456789abcdef"
    url = f"https://llm.example/v1beta/models/m:streamGenerateContent?alt=sse&{name}={secret}&n=2"
    masked = canonical_url(url)
    assert secret not in masked
    assert masked.split("?")[0] == url.split("?")[0]
    before, after = _params(url), _params(masked)
    assert [p.split("=")[0] for p in after] == ["alt", name, "n"]
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1] != before[1]


def test_two_keys_give_the_same_canonical_url() -> None:
    """A replay with another API key in the URL still matches the recording."""
    assert canonical_url("https://h/v1?key=first&alt=sse") == canonical_url(
        "https://h/v1?key=second&alt=sse"
    )


def test_params_that_only_contain_key_are_left_alone() -> None:
    for url in [
        "https://h/v1/search?monkey=1&turkey=2",
        "https://h/v1/messages",
        "https://h/v1/messages?beta=true&z=1&a=2",
    ]:
        assert canonical_url(url) == url


def test_masking_a_key_leaves_the_other_params_byte_for_byte() -> None:
    url = "https://h/v1/models/m:generate?q=a%20b&key=SECRET&flag&name=models/gemini:pro"
    assert canonical_url(url) == url.replace("key=SECRET", "key=" + _masked_value(url))


def _masked_value(url: str) -> str:
    masked = canonical_url(url)
    return next(p for p in _params(masked) if p.startswith("key=")).removeprefix("key=")


def test_explain_names_the_first_differing_json_path() -> None:
    recorded = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "input": {"city": "Paris"}}]},
        ],
    }
    new = json.loads(json.dumps(recorded))
    new["messages"][1]["content"][0]["input"]["city"] = "Lyon"
    new["temperature"] = 0.5  # later in key order than the first difference
    assert explain(json.dumps(recorded).encode(), json.dumps(new).encode()) == (
        "$.messages[1].content[0].input.city",
        "Paris",
        "Lyon",
    )


def test_explain_marks_a_missing_key_as_absent() -> None:
    assert explain(b'{"a": 1, "tools": []}', b'{"a": 1}') == ("$.tools", [], "<absent>")
    assert explain(b'{"a": 1}', b'{"a": 1, "stream": true}') == ("$.stream", "<absent>", True)


def test_explain_marks_a_missing_list_item_as_absent() -> None:
    assert explain(b'{"m": [1, 2]}', b'{"m": [1, 2, 3]}') == ("$.m[2]", "<absent>", 3)


def test_explain_tells_a_number_from_a_boolean() -> None:
    assert explain(b'{"n": 1}', b'{"n": true}') == ("$.n", 1, True)


def test_explain_quotes_keys_that_are_not_identifiers() -> None:
    path, _, _ = explain(b'{"x-y": {"a b": 1}}', b'{"x-y": {"a b": 2}}')
    assert path == '$["x-y"]["a b"]'


def test_explain_gives_a_byte_offset_for_non_json_bodies() -> None:
    head = b"\x00\x01binary frame header " * 3
    recorded, new = head + b"AAAA tail", head + b"AXAA tail"
    path, old, fresh = explain(recorded, new)
    offset = len(head) + 1
    assert path.startswith(f"byte {offset} ")
    assert str(len(recorded)) in path
    assert recorded[offset : offset + 3] in old
    assert new[offset : offset + 3] in fresh


def test_explain_gives_a_byte_offset_when_only_json_spacing_differs() -> None:
    path, _, _ = explain(b'{"a":1}', b'{"a": 1}')
    assert path.startswith("byte 5 ")


def test_explain_finds_nothing_in_equal_bodies() -> None:
    body = b'{"messages": [{"role": "user", "content": "hi"}]}'
    assert explain(body, bytes(body)) == ("", None, None)
