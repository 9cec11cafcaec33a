"""seamtape: a time-travel debugger for LLM agents, at the HTTP seam.

Record every model call an agent makes into a tape, replay it bit-exact with no network,
fork it at any step, and blame the step that made a run fail.
"""

from ._errors import DivergenceError, SeamtapeError, SecretWarning, TapeError, UnknownRunError
from .fork import ForkResult, fork
from .nondet import NondetSource
from .session import Session, record, replay
from .tape import Tape

__version__ = "0.1.0"

__all__ = [
    "DivergenceError",
    "ForkResult",
    "NondetSource",
    "SeamtapeError",
    "SecretWarning",
    "Session",
    "Tape",
    "TapeError",
    "UnknownRunError",
    "__version__",
    "fork",
    "record",
    "replay",
]
