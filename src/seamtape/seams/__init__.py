"""Where bytes are captured: short adapters between a library's objects and the cursor."""

from ._botocore import BotocoreSeam
from ._httpx import LIBRARIES, Redirect, default_inner, transport_class
from ._intercept import follow, intercepting

__all__ = [
    "LIBRARIES",
    "BotocoreSeam",
    "Redirect",
    "default_inner",
    "follow",
    "intercepting",
    "transport_class",
]
