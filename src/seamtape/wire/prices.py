"""A bundled, dated price table, and the cost of a step.

Prices are list prices in USD per million tokens, standard tier, for prompts under any
long-context threshold, as of ``AS_OF``, taken from the pages in ``SOURCES`` and checked
against the ``genai-prices`` data of the version named there. Prices change: update the
entries, ``AS_OF`` and ``SOURCES`` together.

A model is found by the name its provider reports, as providers write it: a dated snapshot
(``gpt-5-2025-08-07``, ``claude-sonnet-4-5@20250929``) resolves to its alias unless the table
lists the snapshot itself (``gpt-4o-2024-05-13`` was priced apart); Bedrock ids resolve through
their cross-region prefix (``us.``, ``eu.``, ``apac.``, ``global.``...) and their vendor and
version parts; a resource path (``models/gemini-2.0-flash``, ``publishers/google/models/…``)
by its last segment. A model that still matches nothing has no cost (None), shown as "price
unknown": a cost is never guessed from a merely similar name.

Why a table and not the ``genai-prices`` package at run time: it needs pydantic, ships 1.6 MB
of data that takes seconds to import on a loaded machine, and would make every cost shown
depend on the version installed beside seamtape; the few models agents use fit in this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ._step import Step

AS_OF = "2026-12-01"

SOURCES = {
    "anthropic": "https://www.anthropic.com/pricing#api",
    "openai": "https://openai.com/api/pricing/",
    "gemini": "https://ai.google.dev/gemini-api/docs/pricing",
    "bedrock": "https://aws.amazon.com/bedrock/pricing/",
    "mistral": "https://mistral.ai/pricing#api-pricing",
    "checked against": "genai-prices 0.2.3 (https://github.com/pydantic/genai-prices)",
}


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None  # None: cached input is billed at the input rate
    cache_write: float | None = None  # None: cache writes are billed at the input rate


def _claude(input: float, output: float) -> Price:
    # Anthropic: cache reads 0.1x input, 5-minute cache writes 1.25x input
    return Price(
        input, output, cache_read=round(input * 0.1, 6), cache_write=round(input * 1.25, 6)
    )


PRICES: dict[str, Price] = {
    # Anthropic (dated snapshots resolve to these aliases)
    "claude-opus-4-6": _claude(5.0, 25.0),
    "claude-opus-4-5": _claude(5.0, 25.0),
    "claude-opus-4-1": _claude(15.0, 75.0),
    "claude-opus-4": _claude(15.0, 75.0),
    "claude-sonnet-4-6": _claude(3.0, 15.0),
    "claude-sonnet-4-5": _claude(3.0, 15.0),
    "claude-sonnet-4": _claude(3.0, 15.0),
    "claude-3-7-sonnet": _claude(3.0, 15.0),
    "claude-haiku-4-5": _claude(1.0, 5.0),
    "claude-3-5-haiku": _claude(0.8, 4.0),
    "claude-3-haiku": Price(0.25, 1.25, cache_read=0.03, cache_write=0.3),
    # OpenAI
    "gpt-5.2": Price(1.75, 14.0, cache_read=0.175),
    "gpt-5.1": Price(1.25, 10.0, cache_read=0.125),
    "gpt-5": Price(1.25, 10.0, cache_read=0.125),
    "gpt-5-mini": Price(0.25, 2.0, cache_read=0.025),
    "gpt-5-nano": Price(0.05, 0.40, cache_read=0.005),
    "gpt-4.1": Price(2.0, 8.0, cache_read=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, cache_read=0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, cache_read=0.025),
    "gpt-4o": Price(2.50, 10.0, cache_read=1.25),
    "gpt-4o-2024-05-13": Price(5.0, 15.0),  # the first gpt-4o snapshot kept its launch price
    "gpt-4o-mini": Price(0.15, 0.60, cache_read=0.075),
    "o3": Price(2.0, 8.0, cache_read=0.50),
    "o4-mini": Price(1.10, 4.40, cache_read=0.275),
    # Gemini (prompts up to 200k tokens)
    "gemini-3-pro-preview": Price(2.0, 12.0, cache_read=0.20),
    "gemini-3-flash-preview": Price(0.50, 3.0, cache_read=0.05),
    "gemini-2.5-pro": Price(1.25, 10.0, cache_read=0.125),
    "gemini-2.5-flash": Price(0.30, 2.50, cache_read=0.03),
    "gemini-2.5-flash-lite": Price(0.10, 0.40, cache_read=0.01),
    "gemini-2.0-flash": Price(0.10, 0.40, cache_read=0.025),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
    # Bedrock on-demand. Claude 4.5 and later: global profiles at Anthropic's list price,
    # regional and geographic (us., eu., ...) profiles 10% above it.
    "global.anthropic.claude-sonnet-4-5": _claude(3.0, 15.0),
    "global.anthropic.claude-haiku-4-5": _claude(1.0, 5.0),
    "regional.anthropic.claude-sonnet-4-5": _claude(3.3, 16.5),
    "regional.anthropic.claude-haiku-4-5": _claude(1.1, 5.5),
    "amazon.nova-premier-v1:0": Price(2.50, 12.50, cache_read=0.625),
    "amazon.nova-pro-v1:0": Price(0.80, 3.20, cache_read=0.20),
    "amazon.nova-lite-v1:0": Price(0.06, 0.24, cache_read=0.015),
    "amazon.nova-micro-v1:0": Price(0.035, 0.14, cache_read=0.00875),
    # Mistral
    "mistral-large": Price(2.0, 6.0),
    "mistral-medium": Price(1.5, 7.5, cache_read=0.15),
    "mistral-small": Price(0.15, 0.60, cache_read=0.015),
    # the embedded simulator's models: small, nonzero, so costs show in demos and tests
    "sim-claude": _claude(1.0, 5.0),
    "sim-gpt": Price(0.50, 2.0, cache_read=0.05),
    "sim-gemini": Price(0.30, 2.50, cache_read=0.03),
    "anthropic.sim-claude-v1": _claude(1.0, 5.0),
}

# Bedrock cross-region inference profiles: global, and the geographic ones.
_BEDROCK_REGION = re.compile(r"^(global|us|us-gov|eu|apac|jp|au|ca)\.")
_BEDROCK_VENDOR = re.compile(r"^(anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai)\.")
_BEDROCK_VERSION = re.compile(r"-v\d+(:\d+)?$")
# A dated snapshot: -20250929, -2025-08-07, @20250929 (Vertex), -001 (Gemini), -2505 (Mistral).
_SNAPSHOT = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|@\d{8}|@latest|-\d{3,4}|-latest)$")


def _names(model: str) -> Iterator[str]:
    """The names ``model`` may be listed under, most specific first."""
    name = model.rsplit("/", 1)[-1]  # models/…, publishers/google/models/…, openai/gpt-4o
    yield name
    region = _BEDROCK_REGION.match(name)
    scope = ""
    if region:
        scope = "global." if region.group(1) == "global" else "regional."
        name = name[region.end() :]
        yield name
    if _BEDROCK_VENDOR.match(name):
        unversioned = _BEDROCK_VERSION.sub("", name)
        vendor, _, bare = unversioned.partition(".")
        base = _SNAPSHOT.sub("", bare)
        if scope:
            yield f"{scope}{vendor}.{base}"
        yield unversioned
        name = bare
    while True:
        yield name
        shorter = _SNAPSHOT.sub("", name)
        if shorter == name:
            return
        name = shorter


def price(model: object) -> Price | None:
    """The price of ``model`` as its provider names it, or None when the table lacks it."""
    if not isinstance(model, str) or not model:
        return None
    for name in _names(model):
        found = PRICES.get(name)
        if found is not None:
            return found
    return None


def cost(step: Step) -> float | None:
    """The USD cost of ``step``'s token usage, or None when its model is not in the table."""
    found = price(step.model)
    if found is None:
        return None
    usage = step.usage
    cache_read = found.input if found.cache_read is None else found.cache_read
    cache_write = found.input if found.cache_write is None else found.cache_write
    per_million = (
        usage.input_tokens * found.input
        + usage.output_tokens * found.output
        + usage.cache_read_tokens * cache_read
        + usage.cache_write_tokens * cache_write
    )
    return per_million / 1_000_000
