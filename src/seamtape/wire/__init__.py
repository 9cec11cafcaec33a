"""Provider wire codecs: exact bytes ⇄ normalized ``Step``.

The codecs know nothing of SQLite or of the seams; they read and build the bytes that
Anthropic, OpenAI (Chat Completions and Responses), Gemini and Bedrock (InvokeModel and
Converse) put on the wire, including SSE and AWS event-stream framing.
"""

from ._api import decode, decode_request, encode_error, encode_response, is_stream
from ._codec import EncodedResponse
from ._registry import APIS, detect
from ._step import Message, Step, ToolCall, ToolResult, ToolSpec, Usage
from .errors import CodecError
from .prices import AS_OF, cost

__all__ = [
    "APIS",
    "AS_OF",
    "CodecError",
    "EncodedResponse",
    "Message",
    "Step",
    "ToolCall",
    "ToolResult",
    "ToolSpec",
    "Usage",
    "cost",
    "decode",
    "decode_request",
    "detect",
    "encode_error",
    "encode_response",
    "is_stream",
]
