"""Bedrock InvokeModel and InvokeModelWithResponseStream, for Anthropic models.

The body is Anthropic's Messages JSON (with ``anthropic_version`` instead of ``model`` and
``stream``); a stream is event-stream ``chunk`` events whose ``bytes`` are base64 Anthropic
stream events.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from . import _aws, _json, anthropic
from ._codec import Codec, EncodedResponse, Headers, json_response
from ._step import Step
from .errors import CodecError

API = "bedrock.invoke"
PATH = _aws.path("invoke|invoke-with-response-stream")


def is_stream(url: str, body: dict[str, Any]) -> bool:
    return _aws.path_match(PATH, url)["operation"] == "invoke-with-response-stream"


def decode_request(url: str, body: dict[str, Any]) -> Step:
    step = Step(
        provider="bedrock", api=API, model=_aws.model_id(PATH, url), stream=is_stream(url, body)
    )
    anthropic.fill_request(step, body)
    return step


def _chunk_event(number: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    if kind != "chunk":
        raise CodecError(f"event {number} has type {kind!r}, not chunk")
    try:
        return _json.load_object(
            base64.b64decode(payload["bytes"], validate=True), f"event {number} bytes"
        )
    except binascii.Error as exc:
        raise CodecError(f"event {number} bytes are not base64: {exc}") from None


def decode_response(step: Step, url: str, headers: Headers, body: bytes, framed: bool) -> None:
    model = step.model
    if not framed:
        anthropic.fill_message(step, _json.load_object(body, "response body"))
    else:
        state = anthropic.StreamState()
        try:
            for number, (kind, payload) in enumerate(_aws.events(body), start=1):
                state.feed(_chunk_event(number, kind, payload))
        except _aws.StreamException as exc:
            state.error = (exc.kind, exc.message)
        state.fill(step)
    # the URL names the Bedrock model that is billed; the body names Anthropic's
    step.model = model


def encode_response(step: Step, stream: bool) -> EncodedResponse:
    if not stream:
        return json_response(_json.dump(anthropic.message_json(step)))
    chunks = []
    for event in anthropic.stream_events(step):
        if event["type"] == "ping":
            continue  # Bedrock does not forward pings
        if event["type"] == "message_stop":
            event = {**event, "amazon-bedrock-invocationMetrics": _metrics(step)}
        chunks.append(
            _aws.event("chunk", {"bytes": base64.b64encode(_json.dump(event)).decode("ascii")})
        )
    headers = [
        ("content-type", _aws.STREAM_CONTENT_TYPE),
        ("x-amzn-bedrock-content-type", "application/json"),
    ]
    return EncodedResponse(200, headers, chunks)


def _metrics(step: Step) -> dict[str, int]:
    return {
        "inputTokenCount": step.usage.input_tokens,
        "outputTokenCount": step.usage.output_tokens,
        "invocationLatency": 0,
        "firstByteLatency": 0,
    }


CODEC = Codec(
    api=API,
    provider="bedrock",
    path=PATH,
    is_stream=is_stream,
    decode_request=decode_request,
    decode_response=decode_response,
    decode_error=_aws.decode_error,
    encode_response=encode_response,
    encode_error=_aws.encode_error,
)
