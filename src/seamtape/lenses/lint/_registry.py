"""The rule registry: each rule's id, documented trigger, default severity and parameters."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import Config
    from ._findings import Finding
    from ._trace import Trace

Check = Callable[["Trace", "Config"], Iterable["Finding"]]


@dataclass(frozen=True)
class Param:
    default: Any
    schema: dict[str, Any]
    doc: str


@dataclass(frozen=True)
class Rule:
    id: str
    family: str
    severity: str  # the default severity of what it finds
    trigger: str  # when it fires, in one sentence a person reads (the docs table)
    check: Check
    params: dict[str, Param] = field(default_factory=dict)


RULES: dict[str, Rule] = {}


def rule(
    id: str, family: str, severity: str, trigger: str, **params: Param
) -> Callable[[Check], Check]:
    """Register a check under ``id``."""

    def register(check: Check) -> Check:
        RULES[id] = Rule(id, family, severity, trigger, check, dict(params))
        return check

    return register


INT = {"type": "integer", "minimum": 1}
NUMBER = {"type": "number", "minimum": 0}
SHARE = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
STRINGS = {"type": "array", "items": {"type": "string"}}
PAIRS = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
}
SEQUENCES = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "string"}, "minItems": 2},
}
