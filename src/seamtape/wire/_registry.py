"""The codecs by api name, and telling the api from a URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from . import anthropic, bedrock_converse, bedrock_invoke, gemini, openai_chat, openai_responses
from ._codec import Codec
from .errors import CodecError

# Bedrock first: its paths are the most specific, and a model id could end in anything
_CODECS: tuple[Codec, ...] = (
    bedrock_invoke.CODEC,
    bedrock_converse.CODEC,
    gemini.CODEC,
    anthropic.CODEC,
    openai_chat.CODEC,
    openai_responses.CODEC,
)
CODECS: dict[str, Codec] = {codec.api: codec for codec in _CODECS}

APIS: tuple[str, ...] = (
    "anthropic.messages",
    "openai.chat",
    "openai.responses",
    "gemini.generate",
    "bedrock.invoke",
    "bedrock.converse",
)


def codec(api: str) -> Codec:
    """The codec for ``api``; CodecError names the known ones otherwise."""
    try:
        return CODECS[api]
    except KeyError:
        raise CodecError(f"unknown api {api!r}; known: {', '.join(APIS)}") from None


def detect(method: str, url: str) -> str | None:
    """The api a request is for, from its method and URL path alone; None if it is not a model call.

    Any host works (the simulator listens on 127.0.0.1); only the path is read.
    """
    if method.upper() != "POST":
        return None
    path = urlsplit(url).path
    for candidate in _CODECS:
        if candidate.path.search(path):
            return candidate.api
    return None
