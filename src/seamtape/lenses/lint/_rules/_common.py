"""What the rules share: building a finding, grouping calls, reading a result."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from .._config import Config
from .._findings import Finding
from .._registry import SHARE, Param
from .._trace import Call, Trace

_OFF = {"type": ["number", "null"], "minimum": 0}
_OFF_INT = {"type": ["integer", "null"], "minimum": 0}
_WARN_AT = Param(0.9, SHARE, "share of the budget at which a warning fires")


def _finding(
    cfg: Config,
    rule_id: str,
    message: str,
    steps: Iterable[int],
    key: str,
    *,
    severity: str | None = None,
    **data: Any,
) -> Finding:
    ordered = tuple(sorted(set(steps)))
    return Finding(rule_id, severity or cfg.severity(rule_id), message, ordered, key, data)


def _in_conversation(trace: Trace) -> dict[str, list[Call]]:
    grouped: dict[str, list[Call]] = {}
    for call in trace.calls:
        grouped.setdefault(call.conversation, []).append(call)
    return grouped


def _succeeded(call: Call) -> bool:
    return call.result is not None and not call.failure


def _failed(call: Call) -> str:
    return call.failure


def _delegates(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
