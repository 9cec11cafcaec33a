"""The agent's test: recorded once against the simulator, replayed from its tape on every run."""

from __future__ import annotations

import anthropic
from weather_agent import plan_day


def test_plans_a_day_with_the_weather(tape) -> None:
    with anthropic.Anthropic(
        api_key="not-a-real-key",  # a replay needs no key
        base_url=tape.upstream,  # where the run was recorded, on replay too
        http_client=tape.httpx2_client(),
    ) as client:
        result = plan_day(client, "Should I walk along the river in Lisbon today?")
    tape.result = result  # compared with the recorded result on replay

    assert result["tools"] == ["get_weather"]
    assert "21°C and sunny" in result["answer"]
