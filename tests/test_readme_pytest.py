"""The README's pytest walk-through, run as written: its three test files (anthropic, openai,
google-genai) recorded with --tape-mode=once into a fresh project, then replayed offline."""

from __future__ import annotations

import re
from pathlib import Path

import anthropic  # noqa: F401
import httpx2  # noqa: F401
import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_test_files() -> dict[str, str]:
    """Every ```python block of the README that starts with ``# tests/test_….py``."""
    blocks = re.findall(r"```python\n(# (tests/test_\w+\.py)\n.*?)```", README.read_text(), re.S)
    return {name: code for code, name in blocks}


def test_the_readme_shows_a_test_for_each_sdk() -> None:
    assert sorted(readme_test_files()) == [
        "tests/test_weather_anthropic.py",
        "tests/test_weather_gemini.py",
        "tests/test_weather_openai.py",
    ]


def test_the_readme_tests_record_then_replay_offline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")
    for name, code in readme_test_files().items():
        path = pytester.path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(code)

    recorded = pytester.runpytest("--tape-mode=once")

    recorded.assert_outcomes(passed=3)
    assert "warnings summary" not in recorded.stdout.str()  # e.g. a model the SDK deprecates
    for sdk in ("anthropic", "openai", "gemini"):
        recorded.stdout.fnmatch_lines(
            [
                f"recorded run * into tests/tapes/tests/test_weather_{sdk}/test_plans_a_day.tape:"
                " * live request(s) to the simulator (policy stochastic) at http://127.0.0.1:*"
            ]
        )
    replayed = pytester.runpytest("--block-network")
    replayed.assert_outcomes(passed=3)
    replayed.stdout.fnmatch_lines(["replayed 3 tape(s), each its latest recorded run *"])
