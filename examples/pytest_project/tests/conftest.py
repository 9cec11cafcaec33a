"""Where recordings go: seamtape's simulator, with a policy that calls the weather tool once.

Without this fixture the plugin starts a simulator with its default policy; to record
against the real API instead, return "https://api.anthropic.com" (and pass a real key).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def tape_upstream() -> Iterator[str]:
    from seamtape import sim

    with sim.serve(sim.StochasticPolicy(seed=7, tools_plan=["get_weather"])) as server:
        yield server.anthropic_base_url
