"""A finding: what a rule saw, how bad it is, and which steps it points at."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "warn", "critical")
_RANK = {name: n for n, name in enumerate(SEVERITIES)}


def rank(severity: str) -> int:
    """Order of severities: info < warn < critical."""
    return _RANK[severity]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a rule saw in a run.

    ``steps`` are 1-based exchange numbers, as ``seamtape show`` numbers them. ``key`` is what
    the finding is about with step numbers left out (a tool and its arguments, a budget's
    name), so its ``fingerprint`` stays put when unrelated steps come and go.
    """

    rule: str
    severity: str
    message: str
    steps: tuple[int, ...] = ()
    key: str = ""
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fingerprint(self) -> str:
        blob = json.dumps([self.rule, self.severity, self.key or self.message])
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "steps": list(self.steps),
            "key": self.key,
            "fingerprint": self.fingerprint,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Finding:
        return cls(
            rule=str(doc["rule"]),
            severity=str(doc["severity"]),
            message=str(doc["message"]),
            steps=tuple(int(s) for s in doc.get("steps", ())),
            key=str(doc.get("key", "")),
            data=dict(doc.get("data") or {}),
        )

    def line(self) -> str:
        """The finding as one line a person reads."""
        where = ""
        if self.steps:
            shown = ", ".join(str(s) for s in self.steps[:8])
            more = "…" if len(self.steps) > 8 else ""
            where = f" (step{'s' if len(self.steps) > 1 else ''} {shown}{more})"
        return f"{self.severity:<8} {self.rule}: {self.message}{where}"
