"""seamtape: a time-travel debugger for LLM agents, at the HTTP seam.

Record every model call an agent makes into a tape, replay it bit-exact with no network,
fork it at any step, and blame the step that made a run fail.
"""

from ._errors import DivergenceError, SecretWarning, SeamtapeError, TapeError, UnknownRunError
from .nondet import NondetSource
from .session import Session, record, replay
from .tape import Tape

__version__ = "0.1.0"

__all__ = [
    "DivergenceError",
    "NondetSource",
    "SeamtapeError",
    "SecretWarning",
    "Session",
    "Tape",
    "TapeError",
    "UnknownRunError",
    "__version__",
    "record",
    "replay",
]
