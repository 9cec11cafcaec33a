"""The one error type of the wire layer."""

from __future__ import annotations


class CodecError(ValueError):
    """Bytes that do not decode as the named wire format, or an api the codecs do not know.

    The message names the api and where decoding stopped, e.g.
    ``"anthropic.messages: stream ended before message_stop (after 3 events)"``.
    """
