"""A bundled, dated price table and the cost of a step.

Prices are list prices in USD per million tokens, standard tier, for prompts under any
long-context threshold; ``AS_OF`` is the date the table stands for. Prices change: update the
entries and the date together. A model missing from the table has no
cost (None): a cost is never guessed from a similar name. Cache writes are billed at the input
rate unless the provider prices them apart (Anthropic's 5-minute cache write, 1.25x input).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._step import Step

AS_OF = "2026-11-01"


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
    # Anthropic
    "claude-opus-4-1": _claude(15.0, 75.0),
    "claude-opus-4-1-20250805": _claude(15.0, 75.0),
    "claude-opus-4-5": _claude(5.0, 25.0),
    "claude-opus-4-5-20251101": _claude(5.0, 25.0),
    "claude-sonnet-4-5": _claude(3.0, 15.0),
    "claude-sonnet-4-5-20250929": _claude(3.0, 15.0),
    "claude-sonnet-4-20250514": _claude(3.0, 15.0),
    "claude-haiku-4-5": _claude(1.0, 5.0),
    "claude-haiku-4-5-20251001": _claude(1.0, 5.0),
    "claude-3-5-haiku-20241022": _claude(0.8, 4.0),
    # OpenAI
    "gpt-5": Price(1.25, 10.0, cache_read=0.125),
    "gpt-5-mini": Price(0.25, 2.0, cache_read=0.025),
    "gpt-5-nano": Price(0.05, 0.40, cache_read=0.005),
    "gpt-4.1": Price(2.0, 8.0, cache_read=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, cache_read=0.10),
    "gpt-4o": Price(2.50, 10.0, cache_read=1.25),
    "gpt-4o-2024-08-06": Price(2.50, 10.0, cache_read=1.25),
    "gpt-4o-mini": Price(0.15, 0.60, cache_read=0.075),
    # Gemini (prompts up to 200k tokens)
    "gemini-2.5-pro": Price(1.25, 10.0, cache_read=0.125),
    "gemini-2.5-flash": Price(0.30, 2.50, cache_read=0.03),
    "gemini-2.5-flash-lite": Price(0.10, 0.40, cache_read=0.01),
    # Bedrock on-demand; Claude 4.5 models are reached through global inference profiles
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0": _claude(3.0, 15.0),
    "global.anthropic.claude-haiku-4-5-20251001-v1:0": _claude(1.0, 5.0),
    "anthropic.claude-3-5-haiku-20241022-v1:0": _claude(0.8, 4.0),
    "amazon.nova-pro-v1:0": Price(0.80, 3.20, cache_read=0.20),
    "amazon.nova-lite-v1:0": Price(0.06, 0.24, cache_read=0.015),
    "amazon.nova-micro-v1:0": Price(0.035, 0.14, cache_read=0.00875),
    # the embedded simulator's models: small, nonzero, so costs show in demos and tests
    "sim-claude": _claude(1.0, 5.0),
    "sim-gpt": Price(0.50, 2.0, cache_read=0.05),
    "sim-gemini": Price(0.30, 2.50, cache_read=0.03),
    "anthropic.sim-claude-v1": _claude(1.0, 5.0),
}


def price(model: str) -> Price | None:
    """The price of ``model`` by exact name, or None."""
    return PRICES.get(model)


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
