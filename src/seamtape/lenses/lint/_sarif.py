"""SARIF 2.1.0 output, as GitHub code scanning reads it."""

from __future__ import annotations

from typing import Any

from ._lint import LintReport
from ._registry import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"info": "note", "warn": "warning", "critical": "error"}


def to_sarif(reports: list[LintReport], *, tool_version: str) -> dict[str, Any]:
    """One SARIF log with one run per lint report; the tape is the artifact findings point at."""
    rule_ids = list(RULES)
    rules = [
        {
            "id": rule.id,
            "name": "".join(part.capitalize() for part in rule.id.split("-")),
            "shortDescription": {"text": f"{rule.family}: {rule.id}"},
            "fullDescription": {"text": f"Fires when {rule.trigger}."},
            "defaultConfiguration": {"level": _LEVEL[rule.severity]},
            "help": {"text": f"Fires when {rule.trigger}. See docs/lint-rules.md."},
            "properties": {"tags": [rule.family]},
        }
        for rule in RULES.values()
    ]
    runs = []
    for report in reports:
        results = []
        for finding in report.findings:
            result: dict[str, Any] = {
                "ruleId": finding.rule,
                "level": _LEVEL[finding.severity],
                "message": {"text": finding.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(report.tape)},
                            "region": {"startLine": 1},
                        },
                        "logicalLocations": [
                            {
                                "name": f"step {step}",
                                "fullyQualifiedName": f"run {report.run}/step {step}",
                                "kind": "member",
                            }
                            for step in finding.steps[:10]
                        ]
                        or [{"name": f"run {report.run}", "kind": "module"}],
                    }
                ],
                "partialFingerprints": {"seamtapeFinding/v1": finding.fingerprint},
                "properties": {"steps": list(finding.steps), "run": report.run},
            }
            if finding.rule in RULES:
                result["ruleIndex"] = rule_ids.index(finding.rule)
            results.append(result)
        runs.append(
            {
                "tool": {
                    "driver": {
                        "name": "seamtape",
                        "version": tool_version,
                        "informationUri": "https://pypi.org/project/seamtape/",
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"seamtape-lint/{report.run}"},
                "results": results,
            }
        )
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs}


def _uri(path: str) -> str:
    return path.replace("\\", "/").removeprefix("./")
