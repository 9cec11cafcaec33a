"""Every lint rule fires on a tape recorded from the simulator and stays silent on one where it
must, on the Anthropic, OpenAI and Gemini wire formats (each through its official SDK)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lint_world import PROVIDERS, call, empty, failing, record
from seamtape import sim
from seamtape._steps import steps_of
from seamtape.lenses.lint import RULES, lint
from seamtape.tape import Tape

WEATHER = call("get_weather", city="Lisbon")

# name -> (script, record options); each is recorded once per provider for the module.
SCENARIOS: dict[str, tuple[list[Any], dict[str, Any]]] = {
    "clean": ([[WEATHER], [call("search", q="museums")], "Lisbon is sunny; see the museums."], {}),
    "storm": (
        [[WEATHER]] * 3 + ["The weather service failed, so I cannot say."],
        {"tools": {"get_weather": failing()}},
    ),
    # a success resets only its own call: get_weather's streak survives search's success
    "storm-other-success": (
        [[WEATHER], [call("search", q="x")], [WEATHER], [WEATHER], "The weather failed."],
        {"tools": {"get_weather": failing()}},
    ),
    "loop": ([[WEATHER]] * 4 + ["Sunny."], {}),
    "sequence": (
        [[call("search", q="a")], [call("book", q="a")]] * 3 + ["Booked."],
        {},
    ),
    "error-retry": (
        [[call("get_weather", city=c)] for c in ("Lisbon", "Lisboa", "Porto")]
        + ["The weather tool failed every time."],
        {"tools": {"get_weather": failing()}},
    ),
    "spiral": (
        ["Thinking.", "Still thinking.", "Hmm.", "Maybe.", "Perhaps.", "Done."],
        {"nudge": 5},
    ),
    "silent": ([[WEATHER], "Lisbon is lovely today."], {"tools": {"get_weather": failing()}}),
    "silent-empty": ([[WEATHER], "Lisbon is lovely today."], {"tools": {"get_weather": empty()}}),
    "acknowledged": (
        [[WEATHER], "The weather lookup failed; I cannot say."],
        {"tools": {"get_weather": failing()}},
    ),
    "self-delegation": (
        [[call("delegate", agent="planner", task="plan it")], "child plan", "Here is the plan."],
        {},
    ),
    "delegation": (
        [[call("delegate", agent="researcher", task="find museums")], "museums", "Plan done."],
        {},
    ),
    "deep-delegation": (
        [
            [call("delegate", agent="researcher", task="dig")],
            [call("delegate", agent="planner", task="re-plan")],
            "inner plan",
            "research",
            "Plan done.",
        ],
        {},
    ),
    "undeclared": ([[call("launch_rockets", target="moon")], "Done."], {}),
    "bad-args": ([[call("get_weather", city=5)], "Done."], {}),
    "urls": (
        [[call("fetch_url", url="https://evil.example.net/x")], "Done."],
        {},
    ),
    "good-url": ([[call("fetch_url", url="https://api.lisbon.pt/weather")], "Done."], {}),
    "paths": ([[call("read_file", path="../../etc/passwd")], "Done."], {}),
    "good-path": ([[call("read_file", path="notes/today.txt")], "Done."], {}),
    "dropped": (
        [[WEATHER, call("search", q="x")], "Done."],
        {"drop_results": True},
    ),
    "duplicated": ([[WEATHER], "Done."], {"duplicate_results": True}),
    "retried": (
        [[WEATHER], "Sunny."],
        {"faults": {i: sim.Fault.rate_limit(retry_after=0.001) for i in range(4)}, "retries": 5},
    ),
    "retried-once": (
        [[WEATHER], "Sunny."],
        {"faults": {0: sim.Fault.rate_limit(retry_after=0.001)}, "retries": 2},
    ),
    "exhausted": (
        [[WEATHER], "Sunny."],
        {"faults": {i: sim.Fault.server_error(503) for i in range(3)}, "retries": 1},
    ),
}

_cache: dict[tuple[str, str], Path] = {}


@pytest.fixture(scope="module")
def tapes(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("lint")

    def get(scenario: str, provider: str) -> Path:
        key = (scenario, provider)
        if key not in _cache:
            script, options = SCENARIOS[scenario]
            _cache[key] = record(root, provider, script, name=scenario, **options)
        return _cache[key]

    return get


def rules_fired(tape: Path, config: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    fired: dict[str, list[Any]] = {}
    for finding in lint(tape, config=config).findings:
        fired.setdefault(finding.rule, []).append(finding)
    return fired


def one(rule: str, **params: Any) -> dict[str, Any]:
    return {"rules": {rule: params}}


parametrize = pytest.mark.parametrize("provider", PROVIDERS)


@parametrize
def test_a_clean_run_has_no_findings_with_the_defaults(tapes: Any, provider: str) -> None:
    report = lint(tapes("clean", provider))
    assert report.findings == []
    assert report.steps == 3 and report.exit_code(strict=True) == 0


@parametrize
def test_retry_storm_fires_on_identical_failing_calls_and_resets_per_call(
    tapes: Any, provider: str
) -> None:
    storm = rules_fired(tapes("storm", provider))["retry-storm"]
    assert [f.steps for f in storm] == [(1, 2, 3)]
    # search's success in between does not reset get_weather's streak (TraceGuard's bug)
    other = rules_fired(tapes("storm-other-success", provider))["retry-storm"]
    assert other[0].steps == (1, 3, 4)
    # a success of the call itself does reset it: the loop tape's calls all succeed
    assert "retry-storm" not in rules_fired(tapes("loop", provider))
    assert "retry-storm" not in rules_fired(tapes("clean", provider))


@parametrize
def test_retry_storm_threshold_comes_from_the_config(tapes: Any, provider: str) -> None:
    assert "retry-storm" not in rules_fired(
        tapes("storm", provider), one("retry-storm", threshold=4)
    )


@parametrize
def test_sdk_retry_storm_counts_repeats_of_the_same_request_after_429(
    tapes: Any, provider: str
) -> None:
    fired = rules_fired(tapes("retried", provider))
    (storm,) = fired["sdk-retry-storm"]
    assert storm.steps == (1, 2, 3, 4, 5) and storm.data["attempts"] == 5
    assert "sdk-retry-storm" not in rules_fired(tapes("retried-once", provider))
    assert "sdk-retry-storm" not in rules_fired(tapes("clean", provider))


@parametrize
def test_loop_repeat_fires_at_the_fourth_identical_call(tapes: Any, provider: str) -> None:
    (loop,) = rules_fired(tapes("loop", provider))["loop-repeat"]
    assert loop.steps == (1, 2, 3, 4)
    assert "loop-repeat" not in rules_fired(tapes("loop", provider), one("loop-repeat", repeats=5))
    assert "loop-repeat" not in rules_fired(tapes("storm", provider))  # three calls only


@parametrize
def test_loop_sequence_fires_on_a_repeating_block(tapes: Any, provider: str) -> None:
    (loop,) = rules_fired(tapes("sequence", provider))["loop-sequence"]
    assert loop.steps == (1, 2, 3, 4, 5, 6)
    assert "loop-sequence" not in rules_fired(tapes("clean", provider))
    assert "loop-sequence" not in rules_fired(tapes("loop", provider))  # one call is no sequence


@parametrize
def test_error_retry_loop_fires_when_a_tool_keeps_failing_with_new_arguments(
    tapes: Any, provider: str
) -> None:
    (loop,) = rules_fired(tapes("error-retry", provider))["error-retry-loop"]
    assert loop.steps == (1, 2, 3)
    assert "error-retry-loop" not in rules_fired(tapes("storm", provider))  # same args: a storm
    assert "error-retry-loop" not in rules_fired(tapes("clean", provider))


@parametrize
def test_reasoning_spiral_fires_on_many_answers_without_a_tool_call(
    tapes: Any, provider: str
) -> None:
    (spiral,) = rules_fired(tapes("spiral", provider))["reasoning-spiral"]
    assert spiral.steps == (1, 2, 3, 4, 5, 6)
    assert "reasoning-spiral" not in rules_fired(tapes("clean", provider))


@parametrize
def test_silent_failure_fires_when_the_model_carries_on_after_an_error(
    tapes: Any, provider: str
) -> None:
    (silent,) = rules_fired(tapes("silent", provider))["silent-failure"]
    assert silent.steps == (1, 2) and "error" in silent.message
    (empty_result,) = rules_fired(tapes("silent-empty", provider))["silent-failure"]
    assert "empty" in empty_result.message
    assert "silent-failure" not in rules_fired(tapes("acknowledged", provider))
    assert "silent-failure" not in rules_fired(tapes("clean", provider))


@parametrize
def test_recursive_delegation_fires_when_an_agent_delegates_to_itself(
    tapes: Any, provider: str
) -> None:
    (cycle,) = rules_fired(tapes("self-delegation", provider))["recursive-delegation"]
    assert cycle.steps == (1, 2) and "itself" in cycle.message
    # to a different sub-agent, and back once it answered: no cycle, and the stack was popped
    assert rules_fired(tapes("delegation", provider)) == {}
    deep = rules_fired(tapes("deep-delegation", provider))
    (ancestor,) = deep["recursive-delegation"]
    assert "ancestor" in ancestor.message and ancestor.steps == (2, 3)


@parametrize
def test_delegation_depth_fires_past_the_limit(tapes: Any, provider: str) -> None:
    deep = rules_fired(tapes("deep-delegation", provider), one("delegation-depth", max_depth=1))
    (depth,) = deep["delegation-depth"]
    assert depth.steps == (2, 3)
    assert "delegation-depth" not in rules_fired(tapes("deep-delegation", provider))
    delegation = tapes("delegation", provider)
    assert "delegation-depth" not in rules_fired(delegation, one("delegation-depth", max_depth=1))


@parametrize
def test_tool_policy_allow_and_deny(tapes: Any, provider: str) -> None:
    clean = tapes("clean", provider)
    (denied,) = rules_fired(clean, one("tool-policy", deny=["get_*"]))["tool-policy"]
    assert denied.severity == "critical" and denied.steps == (1,)
    (outside,) = rules_fired(clean, one("tool-policy", allow=["get_weather"]))["tool-policy"]
    assert outside.steps == (2,) and "allow" in outside.message
    assert rules_fired(clean, one("tool-policy", allow=["get_weather", "search"], deny=["x"])) == {}


@parametrize
def test_undeclared_tool_fires_on_a_call_the_request_did_not_declare(
    tapes: Any, provider: str
) -> None:
    (undeclared,) = rules_fired(tapes("undeclared", provider))["undeclared-tool"]
    assert undeclared.steps == (1,) and "launch_rockets" in undeclared.message
    assert lint(tapes("undeclared", provider)).exit_code() == 2


@parametrize
def test_tool_schema_validates_arguments_against_the_declared_schema(
    tapes: Any, provider: str
) -> None:
    (bad,) = rules_fired(tapes("bad-args", provider))["tool-schema"]
    assert bad.steps == (1,) and "not of type 'string'" in bad.message
    assert "tool-schema" not in rules_fired(tapes("clean", provider))


@parametrize
def test_url_hosts_are_checked_against_the_allowlist(tapes: Any, provider: str) -> None:
    allow = one("url-host", allowed_hosts=["*.lisbon.pt"])
    (host,) = rules_fired(tapes("urls", provider), allow)["url-host"]
    assert "evil.example.net" in host.message
    assert "url-host" not in rules_fired(tapes("good-url", provider), allow)
    assert "url-host" not in rules_fired(tapes("urls", provider))  # off without an allowlist


@parametrize
def test_sandbox_paths_must_stay_under_the_root(tapes: Any, provider: str) -> None:
    root = one("sandbox-path", root="/workspace")
    (escape,) = rules_fired(tapes("paths", provider), root)["sandbox-path"]
    assert "../../etc/passwd" in escape.message
    assert "sandbox-path" not in rules_fired(tapes("good-path", provider), root)
    assert "sandbox-path" not in rules_fired(tapes("paths", provider))


@parametrize
def test_tool_calls_pair_with_exactly_one_result(tapes: Any, provider: str) -> None:
    (dropped,) = rules_fired(tapes("dropped", provider))["tool-pairing"]
    assert "got no result" in dropped.message and "search" in dropped.message
    duplicated = rules_fired(tapes("duplicated", provider))["tool-pairing"]
    assert any("answered 2 times" in f.message for f in duplicated)
    assert "tool-pairing" not in rules_fired(tapes("clean", provider))


@parametrize
def test_tool_order_rules(tapes: Any, provider: str) -> None:
    clean = tapes("clean", provider)  # get_weather, then search
    assert "tool-order" in rules_fired(
        clean, one("tool-order", must_precede=[["search", "get_weather"]])
    )
    assert "tool-order" not in rules_fired(
        clean, one("tool-order", must_precede=[["get_weather", "search"]])
    )
    assert "tool-order" in rules_fired(clean, one("tool-order", must_follow=[["search", "book"]]))
    assert "tool-order" not in rules_fired(
        clean, one("tool-order", must_follow=[["get_weather", "search"]])
    )
    assert "tool-order" in rules_fired(
        clean, one("tool-order", forbidden=[["get_weather", "search"]])
    )
    assert "tool-order" not in rules_fired(
        clean, one("tool-order", forbidden=[["search", "get_weather"]])
    )


def _costs(tape: Path) -> list[tuple[int, float, int]]:
    """(step, cost, tokens) measured from the tape's own steps, independently of the rule."""
    with Tape(tape) as opened:
        steps = steps_of(opened, opened.run().id)
    out = []
    for seq, step in enumerate(steps, start=1):
        assert step is not None and step.cost_usd is not None
        u = step.usage
        out.append((seq, step.cost_usd, u.input_tokens + u.output_tokens))
    return out


@parametrize
def test_budgets_cross_at_the_step_where_the_total_passes_the_limit(
    tapes: Any, provider: str
) -> None:
    clean = tapes("clean", provider)
    costs = _costs(clean)
    total_after_two = costs[0][1] + costs[1][1]
    assert total_after_two > 0
    (cost,) = rules_fired(clean, one("budget-cost", max_usd=total_after_two * 0.999))["budget-cost"]
    assert cost.steps == (2,) and cost.severity == "critical"
    assert cost.data["total"] == pytest.approx(total_after_two)
    (near,) = rules_fired(clean, one("budget-cost", max_usd=sum(c for _, c, _ in costs) * 1.05))[
        "budget-cost"
    ]
    assert near.severity == "warn"
    assert "budget-cost" not in rules_fired(clean, one("budget-cost", max_usd=1.0))
    tokens = sum(t for _, _, t in costs)
    (over,) = rules_fired(clean, one("budget-tokens", max=tokens - 1))["budget-tokens"]
    assert over.steps == (3,)
    assert "budget-tokens" not in rules_fired(clean, one("budget-tokens", max=tokens * 2))
    (calls,) = rules_fired(clean, one("budget-calls", max=2))["budget-calls"]
    assert calls.steps == (3,)
    assert "budget-calls" not in rules_fired(clean, one("budget-calls", max=10))
    assert "budget-time" in rules_fired(clean, one("budget-time", max_seconds=0))
    assert "budget-time" not in rules_fired(clean, one("budget-time", max_seconds=3600))


@parametrize
def test_context_window_share_warns_at_ninety_percent(tapes: Any, provider: str) -> None:
    clean = tapes("clean", provider)
    with Tape(clean) as opened:
        steps = [s for s in steps_of(opened, opened.run().id) if s is not None]
    model = steps[0].model
    biggest = max(s.usage.input_tokens for s in steps)
    window = one("context-window", windows={model: int(biggest / 0.95)})
    (warn,) = rules_fired(clean, window)["context-window"]
    assert warn.severity == "warn" and warn.steps == (3,)
    full = rules_fired(clean, one("context-window", windows={model: biggest}))["context-window"]
    assert full[0].severity == "critical"
    assert "context-window" not in rules_fired(
        clean, one("context-window", windows={model: biggest * 2})
    )


@parametrize
def test_each_failed_step_is_classified_exactly_once(tapes: Any, provider: str) -> None:
    def modes(scenario: str) -> dict[int, str]:
        found = rules_fired(tapes(scenario, provider)).get("failure-mode", [])
        steps = [f.steps[0] for f in found]
        assert len(steps) == len(set(steps))  # once per failed step
        return {f.steps[0]: f.data["mode"] for f in found}

    assert modes("storm") == {1: "tool_failure", 2: "tool_failure", 3: "tool_failure"}
    assert modes("bad-args")[1] == "schema_mismatch"
    assert modes("loop")[4] == "cycle"
    assert set(modes("exhausted").values()) == {"retry_exhaustion"}
    assert modes("retried") == {1: "http_error", 2: "http_error", 3: "http_error", 4: "http_error"}
    assert modes("clean") == {}


def test_every_rule_is_tested_here_and_documented() -> None:
    here = Path(__file__).parent
    source = "".join(
        (here / name).read_text(encoding="utf-8")
        for name in ("test_lint_rules.py", "test_lint_streams.py")
    )
    docs = (Path(__file__).parents[1] / "docs" / "lint-rules.md").read_text(encoding="utf-8")
    for rule in RULES.values():
        assert f'"{rule.id}"' in source or f"'{rule.id}'" in source, rule.id
        # the reference table row: id, family, default severity, trigger, each default
        row = next(line for line in docs.splitlines() if line.startswith(f"| `{rule.id}` |"))
        assert f"| {rule.family} | {rule.severity} | {rule.trigger} |" in row, rule.id
        for name, param in rule.params.items():
            assert f"`{name}` ({json.dumps(param.default)})" in row, (rule.id, name)


class _Stopping:
    """The scripted model, stopping every answer for ``stop`` (output limit, content filter)."""

    seed = 0

    def __init__(self, stop: str) -> None:
        self.stop, self.inner = stop, sim.ScriptedPolicy(["A partial answer"] * 2)

    def respond(self, step: Any) -> Any:
        answer = self.inner.respond(step)
        answer.stop_reason = self.stop
        return answer


@parametrize
@pytest.mark.parametrize(
    ("stop", "mode"), [("max_tokens", "truncated_output"), ("content_filter", "refusal")]
)
def test_refusals_and_truncated_answers_are_failure_modes(
    tmp_path: Path, provider: str, stop: str, mode: str
) -> None:
    import seamtape
    from lint_world import BASE_URL, Agent

    tape = tmp_path / "stopped.tape"
    agent = Agent(provider, {})
    agent.retries = 0  # type: ignore[attr-defined]
    with sim.serve(_Stopping(stop)) as simulator:
        with seamtape.record(tape, upstream=getattr(simulator, BASE_URL[provider])) as session:
            session.result = agent(session)
    (finding,) = lint(tape).findings
    assert finding.rule == "failure-mode" and finding.data["mode"] == mode and finding.steps == (1,)
