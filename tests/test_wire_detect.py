"""Telling the api from a request's URL, on any host, and whether it asks for a stream."""

from __future__ import annotations

import json

import pytest

from seamtape.wire import APIS, CodecError, detect, is_stream

ARN = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0"


@pytest.mark.parametrize(
    ("url", "api"),
    [
        ("https://api.anthropic.com/v1/messages", "anthropic.messages"),
        ("http://127.0.0.1:50123/v1/messages?beta=true", "anthropic.messages"),
        ("https://api.openai.com/v1/chat/completions", "openai.chat"),
        (
            "https://x.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=2024-10-21",
            "openai.chat",
        ),
        ("https://api.openai.com/v1/responses", "openai.responses"),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
            "gemini.generate",
        ),
        (
            "http://127.0.0.1:9/v1beta/models/sim-gemini:streamGenerateContent?alt=sse",
            "gemini.generate",
        ),
        (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1"
            "/publishers/google/models/gemini-2.5-pro:generateContent",
            "gemini.generate",
        ),
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke",
            "bedrock.invoke",
        ),
        (
            "http://127.0.0.1:9/model/anthropic.sim-claude-v1/invoke-with-response-stream",
            "bedrock.invoke",
        ),
        (
            f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{ARN}/converse",
            "bedrock.converse",
        ),
        (
            "http://localhost/model/us.anthropic.claude-haiku-4-5-20251001-v1:0/converse-stream",
            "bedrock.converse",
        ),
        # a decoded ARN keeps its slash; the operation is still the last segment
        (
            "http://localhost/model/arn:aws:bedrock:us-east-1:1:inference-profile/us.x-v1:0/converse",
            "bedrock.converse",
        ),
    ],
)
def test_detect_reads_the_path_on_any_host(url: str, api: str) -> None:
    assert detect("POST", url) == api
    assert detect("post", url) == api


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "https://api.openai.com/v1/responses"),
        ("POST", "https://api.anthropic.com/v1/messages/count_tokens"),
        ("POST", "https://api.openai.com/v1/threads/thread_1/messages"),
        ("POST", "https://api.openai.com/v1/embeddings"),
        (
            "POST",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:countTokens",
        ),
        ("POST", "http://127.0.0.1:9/model/x/apply-guardrail"),
        ("POST", "http://127.0.0.1:9/"),
    ],
)
def test_detect_ignores_other_calls(method: str, url: str) -> None:
    assert detect(method, url) is None


@pytest.mark.parametrize(
    ("api", "url", "body", "expected"),
    [
        ("anthropic.messages", "http://h/v1/messages", {"model": "m", "stream": True}, True),
        ("anthropic.messages", "http://h/v1/messages", {"model": "m"}, False),
        ("openai.chat", "http://h/v1/chat/completions", {"stream": True}, True),
        ("openai.responses", "http://h/v1/responses", {"stream": False}, False),
        ("gemini.generate", "http://h/v1beta/models/g:streamGenerateContent?alt=sse", {}, True),
        ("gemini.generate", "http://h/v1beta/models/g:generateContent", {}, False),
        ("bedrock.invoke", "http://h/model/m/invoke-with-response-stream", {}, True),
        ("bedrock.invoke", "http://h/model/m/invoke", {}, False),
        ("bedrock.converse", "http://h/model/m/converse-stream", {}, True),
        ("bedrock.converse", "http://h/model/m/converse", {}, False),
    ],
)
def test_is_stream(api: str, url: str, body: dict[str, object], expected: bool) -> None:
    assert is_stream(api, url, json.dumps(body).encode()) is expected


def test_apis_are_the_six_formats() -> None:
    assert APIS == (
        "anthropic.messages",
        "openai.chat",
        "openai.responses",
        "gemini.generate",
        "bedrock.invoke",
        "bedrock.converse",
    )


def test_unknown_api_is_a_codec_error_naming_the_known_ones() -> None:
    with pytest.raises(
        CodecError, match=r"unknown api 'cohere\.chat'; known: anthropic\.messages, openai\.chat"
    ):
        is_stream("cohere.chat", "http://h/v1/chat", b"{}")
