"""The one error type of the wire layer, defined with every other error in ``seamtape._errors``."""

from __future__ import annotations

from .._errors import CodecError

__all__ = ["CodecError"]
