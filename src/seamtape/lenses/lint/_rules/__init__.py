"""The rules: pure functions of a ``Trace`` and the configuration, yielding findings.

Each rule is registered with its id, family, default severity, a one-sentence trigger and its
parameters (with defaults); docs/lint-rules.md is the long form of the same table. Importing
this package registers them, family by family in the order below (the order of ``RULES``).
"""

import importlib

FAMILIES = ("loops", "silent", "delegation", "policy", "contracts", "budgets", "failures")
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

from .budgets import CONTEXT_WINDOWS, model_turns  # noqa: E402
from .failures import FAILURE_MODES, failure_modes  # noqa: E402

__all__ = ["CONTEXT_WINDOWS", "FAILURE_MODES", "FAMILIES", "failure_modes", "model_turns"]
