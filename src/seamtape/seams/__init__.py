"""Where bytes are captured: short adapters between a library's objects and the cursor."""

from ._botocore import BotocoreSeam
from ._httpx import LIBRARIES, Redirect, default_inner, transport_class
from ._intercept import intercepting

__all__ = [
    "LIBRARIES",
    "BotocoreSeam",
    "Redirect",
    "default_inner",
    "intercepting",
    "transport_class",
]
