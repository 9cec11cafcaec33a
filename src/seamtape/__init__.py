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
    "AgentError": "._errors",
    "AgentRaisedError": "._errors",
    "BlameReport": ".engine.blame",
    "CodecError": "._errors",
    "DamagedTapeError": "._errors",
    "DivergenceError": "._errors",
    "ForkResult": ".engine.fork",
    "GuardTripped": "._errors",
    "Guards": ".lenses.lint",
    "LintConfigError": "._errors",
    "LintReport": ".lenses.lint",
    "ManifestError": "._errors",
    "NetworkBlockedError": "._errors",
    "NondetSource": "._nondet",
    "NotReplayableError": "._errors",
    "Redaction": "._match",
    "RunDiff": ".lenses.diff",
    "SeamtapeError": "._errors",
    "SecretWarning": "._errors",
    "Session": "._session",
    "StepBlame": ".engine.blame",
    "Tape": ".tape",
    "TapeError": "._errors",
    "UnknownRunError": "._errors",
    "UpstreamError": "._errors",
    "TapeRequest": "._cursor",
    "TapeResponse": "._cursor",
    "blame": ".engine.blame",
    "check_replay": ".engine.check",
    "diff": ".lenses.diff",
    "export_trace": ".lenses.otel",
    "extend": "._session",
    "fork": ".engine.fork",
    "follow": ".seams",
    "ingest_trace": ".lenses.otel",
    "lint": ".lenses.lint",
    "record": "._session",
    "replay": "._session",
    "serve_proxy": ".engine.proxy",
}

__all__ = [
    "AgentError",
    "AgentRaisedError",
    "BlameReport",
    "CodecError",
    "DamagedTapeError",
    "DivergenceError",
    "ForkResult",
    "GuardTripped",
    "Guards",
    "LintConfigError",
    "LintReport",
    "ManifestError",
    "NetworkBlockedError",
    "NondetSource",
    "NotReplayableError",
    "Redaction",
    "RunDiff",
    "SeamtapeError",
    "SecretWarning",
    "Session",
    "StepBlame",
    "Tape",
    "TapeError",
    "TapeRequest",
    "TapeResponse",
    "UnknownRunError",
    "UpstreamError",
    "__version__",
    "blame",
    "check_replay",
    "diff",
    "export_trace",
    "extend",
    "follow",
    "fork",
    "ingest_trace",
    "lint",
    "record",
    "replay",
    "serve_proxy",
]

if TYPE_CHECKING:
    from ._cursor import TapeRequest, TapeResponse
    from ._errors import (
        AgentError,
        AgentRaisedError,
        CodecError,
        DamagedTapeError,
        DivergenceError,
        GuardTripped,
        LintConfigError,
        ManifestError,
        NetworkBlockedError,
        NotReplayableError,
        SeamtapeError,
        SecretWarning,
        TapeError,
        UnknownRunError,
        UpstreamError,
    )
    from ._match import Redaction
    from ._nondet import NondetSource
    from ._session import Session, extend, record, replay
    from .engine.blame import BlameReport, StepBlame, blame
    from .engine.check import check_replay
    from .engine.fork import ForkResult, fork
    from .engine.proxy import serve_proxy
    from .lenses.diff import RunDiff, diff
    from .lenses.lint import Guards, LintReport, lint
    from .lenses.otel import export_trace, ingest_trace
    from .seams import follow
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
