"""seamtape: a time-travel debugger for LLM agents, at the HTTP seam.

Record every model call an agent makes into a tape, replay it bit-exact with no network,
fork it at any step, and blame the step that made a run fail.

The names below are imported on first use, so that ``import seamtape`` (and the CLI's
``--help``) stay fast and no SDK or heavy module loads until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the private module that defines it
_EXPORTS = {
    "BlameReport": ".blame",
    "DivergenceError": "._errors",
    "ForkResult": ".fork",
    "NondetSource": ".nondet",
    "RunDiff": ".analyze.diff",
    "SeamtapeError": "._errors",
    "SecretWarning": "._errors",
    "Session": ".session",
    "StepBlame": ".blame",
    "Tape": ".tape",
    "TapeError": "._errors",
    "UnknownRunError": "._errors",
    "blame": ".blame",
    "check_replay": ".check",
    "diff": ".analyze.diff",
    "fork": ".fork",
    "record": ".session",
    "replay": ".session",
}

__all__ = [
    "BlameReport",
    "DivergenceError",
    "ForkResult",
    "NondetSource",
    "RunDiff",
    "SeamtapeError",
    "SecretWarning",
    "Session",
    "StepBlame",
    "Tape",
    "TapeError",
    "UnknownRunError",
    "__version__",
    "blame",
    "check_replay",
    "diff",
    "fork",
    "record",
    "replay",
]

# `fork` and `blame` name both a module and the function in it. Importing a submodule sets
# the package attribute to the module, so these two are bound now, after their modules load.
from .blame import BlameReport, StepBlame, blame  # noqa: E402
from .fork import ForkResult, fork  # noqa: E402

if TYPE_CHECKING:
    from ._errors import DivergenceError, SeamtapeError, SecretWarning, TapeError, UnknownRunError
    from .analyze.diff import RunDiff, diff
    from .check import check_replay
    from .nondet import NondetSource
    from .session import Session, record, replay
    from .tape import Tape


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seamtape' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
