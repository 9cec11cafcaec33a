"""The price table is dated and exact; cost is None for a model it does not list."""

from __future__ import annotations

import datetime

import pytest

from seamtape.wire import AS_OF, Step, Usage, cost
from seamtape.wire.prices import PRICES


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
    "model",
    [
        "",
        "gpt-4o-2099-01-01",
        "claude-sonnet-4-5-20990101",
        "us.anthropic.sim-claude-v1",
        "SIM-CLAUDE",
    ],
)
def test_unknown_models_have_no_cost(model: str) -> None:
    assert cost(Step(provider="x", api="openai.chat", model=model, usage=Usage(10, 10))) is None


def test_every_price_is_positive_and_cache_reads_are_discounts() -> None:
    for model, price in PRICES.items():
        assert price.input > 0 and price.output > 0, model
        assert price.cache_read is None or price.cache_read < price.input, model
