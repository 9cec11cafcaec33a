"""The price table is dated and exact; cost is None for a model it does not list."""

from __future__ import annotations

import datetime

import pytest

from seamtape.wire import AS_OF, Step, Usage, cost
from seamtape.wire.prices import PRICES, SOURCES, Price, price


def test_as_of_is_a_date() -> None:
    assert datetime.date.fromisoformat(AS_OF)


@pytest.mark.parametrize(
    "model", ["sim-claude", "sim-gpt", "sim-gemini", "anthropic.sim-claude-v1"]
)
def test_simulator_models_have_small_nonzero_prices(model: str) -> None:
    price = PRICES[model]
    assert 0 < price.input <= 5 and 0 < price.output <= 10


def test_cost_counts_each_kind_of_token_at_its_rate() -> None:
    step = Step(
        provider="anthropic",
        api="anthropic.messages",
        model="claude-sonnet-4-5",
        usage=Usage(1_000_000, 100_000, 2_000_000, 400_000),
    )
    # 1M input at $3, 0.1M output at $15, 2M cache reads at $0.30, 0.4M cache writes at $3.75
    assert cost(step) == pytest.approx(3.0 + 1.5 + 0.6 + 1.5)


def test_cached_tokens_without_a_cache_price_bill_at_the_input_rate() -> None:
    PRICES["test-model"] = type(PRICES["sim-gpt"])(input=2.0, output=4.0)
    try:
        step = Step(
            provider="openai",
            api="openai.chat",
            model="test-model",
            usage=Usage(0, 0, cache_read_tokens=500_000),
        )
        assert cost(step) == pytest.approx(1.0)
    finally:
        del PRICES["test-model"]


@pytest.mark.parametrize(
    ("reported", "listed"),
    [
        # dated snapshots, as the OpenAI and Anthropic responses name the model
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),  # Vertex AI
        # models the first table lacked
        ("claude-sonnet-4-6", "claude-sonnet-4-6"),
        ("gemini-2.0-flash", "gemini-2.0-flash"),
        ("gemini-3-pro-preview", "gemini-3-pro-preview"),
        # Gemini resource names and versions
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        # Bedrock ids: cross-region prefixes, vendor and version parts
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "regional.anthropic.claude-sonnet-4-5"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "global.anthropic.claude-haiku-4-5"),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
        ("eu.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
        ("mistral-medium-latest", "mistral-medium"),
        ("mistral-medium-2505", "mistral-medium"),
    ],
)
def test_models_are_matched_as_providers_name_them(reported: str, listed: str) -> None:
    assert price(reported) is PRICES[listed]


def test_a_snapshot_priced_apart_keeps_its_own_price() -> None:
    assert price("gpt-4o-2024-05-13") == Price(5.0, 15.0)
    assert price("gpt-4o-2024-08-06") is PRICES["gpt-4o"]


def test_the_table_names_its_sources_and_date() -> None:
    assert {"anthropic", "openai", "gemini", "bedrock"} <= set(SOURCES)
    assert all(url.startswith("https://") or "https://" in url for url in SOURCES.values())


@pytest.mark.parametrize(
    "model",
    ["", "gpt-99", "claude-unknown-4-5-20250929", "SIM-CLAUDE", "sim-claude-pro", ["x"], None],
)
def test_unknown_models_have_no_cost(model: object) -> None:
    step = Step(provider="x", api="openai.chat", model=model, usage=Usage(10, 10))  # type: ignore[arg-type]
    assert cost(step) is None


def test_every_price_is_positive_and_cache_reads_are_discounts() -> None:
    for model, listed in PRICES.items():
        assert listed.input > 0 and listed.output > 0, model
        assert listed.cache_read is None or listed.cache_read < listed.input, model
