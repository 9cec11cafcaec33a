"""Lint a run, and guard one live: rules over a tape's steps, and the same rules as breakers.

    from seamtape.lenses.lint import lint
    report = lint("run.tape", config={"rules": {"budget-cost": {"max_usd": 0.5}}})
    for finding in report.findings:
        print(finding.line())

Every rule is a pure function of the run's trace (its exchanges decoded by the wire codecs);
docs/lint-rules.md lists each rule's trigger and defaults.
"""

from . import _rules  # noqa: F401  (registers the rules)
from ._config import Config, discover, load, schema
from ._findings import SEVERITIES, Finding
from ._guard import (
    Breaker,
    Guards,
    LogFile,
    Trip,
    Webhook,
    action,
    guards_from_specs,
    guards_of,
    print_action,
)
from ._lint import EXIT_CLEAN, EXIT_CRITICAL, EXIT_WARN, LintReport, lint, run_rules, trace_of
from ._registry import RULES, Rule
from ._rules import FAILURE_MODES
from ._sarif import to_sarif
from ._watch import Status, Update, Watcher, kill

__all__ = [
    "EXIT_CLEAN",
    "EXIT_CRITICAL",
    "EXIT_WARN",
    "FAILURE_MODES",
    "RULES",
    "SEVERITIES",
    "Breaker",
    "Config",
    "Finding",
    "Guards",
    "LintReport",
    "LogFile",
    "Rule",
    "Status",
    "Trip",
    "Update",
    "Watcher",
    "Webhook",
    "action",
    "discover",
    "guards_from_specs",
    "guards_of",
    "kill",
    "lint",
    "load",
    "print_action",
    "run_rules",
    "schema",
    "to_sarif",
    "trace_of",
]
