"""AWS event-stream framing (``application/vnd.amazon.eventstream``): parse and build messages.

A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), typed
headers, a payload, and a CRC32 of everything before it. All integers are big-endian. The
format is what botocore's ``EventStreamBuffer`` reads; nothing here depends on botocore.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from .errors import CodecError

_PRELUDE = struct.Struct("!III")
_PRELUDE_LENGTH = 12
_CRC_LENGTH = 4


class HeaderType(IntEnum):
    """The header value types the format defines, by their wire code."""

    TRUE = 0
    FALSE = 1
    BYTE = 2
    SHORT = 3
    INTEGER = 4
    LONG = 5
    BYTES = 6
    STRING = 7
    TIMESTAMP = 8  # milliseconds since the epoch, as a signed 64-bit integer
    UUID = 9  # 16 raw bytes


_INT_FORMATS = {
    HeaderType.BYTE: struct.Struct("!b"),
    HeaderType.SHORT: struct.Struct("!h"),
    HeaderType.INTEGER: struct.Struct("!i"),
    HeaderType.LONG: struct.Struct("!q"),
    HeaderType.TIMESTAMP: struct.Struct("!q"),
}

HeaderValue = bool | int | bytes | str


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    value: HeaderValue
    type: HeaderType = HeaderType.STRING


@dataclass(frozen=True, slots=True)
class Message:
    """One event-stream message: its headers in wire order and its payload."""

    headers: tuple[Header, ...]
    payload: bytes

    def header(self, name: str) -> HeaderValue | None:
        """The value of header ``name``, or None."""
        for header in self.headers:
            if header.name == name:
                return header.value
        return None


def _crc(data: bytes, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def _encode_header(header: Header) -> bytes:
    name = header.name.encode("utf-8")
    if not 0 < len(name) < 256:
        raise ValueError(f"header name must be 1 to 255 bytes: {header.name!r}")
    kind, value = HeaderType(header.type), header.value
    out = bytes([len(name)]) + name + bytes([kind])
    if kind in (HeaderType.TRUE, HeaderType.FALSE):
        if value is not (kind is HeaderType.TRUE):
            raise ValueError(
                f"header {header.name!r}: type {kind.name} needs value {kind is HeaderType.TRUE}"
            )
        return out
    if kind in _INT_FORMATS:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"header {header.name!r}: type {kind.name} needs an int")
        try:
            return out + _INT_FORMATS[kind].pack(value)
        except struct.error as exc:
            raise ValueError(f"header {header.name!r}: {exc}") from None
    if kind is HeaderType.UUID:
        if not isinstance(value, bytes) or len(value) != 16:
            raise ValueError(f"header {header.name!r}: a UUID is 16 bytes")
        return out + value
    if kind is HeaderType.STRING:
        if not isinstance(value, str):
            raise ValueError(f"header {header.name!r}: type STRING needs a str")
        raw = value.encode("utf-8")
    else:
        if not isinstance(value, bytes):
            raise ValueError(f"header {header.name!r}: type BYTES needs bytes")
        raw = value
    if len(raw) > 0xFFFF:
        raise ValueError(f"header {header.name!r}: value longer than 65535 bytes")
    return out + struct.pack("!H", len(raw)) + raw


def build(headers: Sequence[Header] | Mapping[str, str], payload: bytes) -> bytes:
    """The bytes of one message. A mapping gives string headers, the common case."""
    if isinstance(headers, Mapping):
        headers = [Header(name, value) for name, value in headers.items()]
    header_bytes = b"".join(_encode_header(h) for h in headers)
    total = _PRELUDE_LENGTH + len(header_bytes) + len(payload) + _CRC_LENGTH
    prelude = struct.pack("!II", total, len(header_bytes))
    prelude += struct.pack("!I", _crc(prelude))
    message = prelude + header_bytes + payload
    return message + struct.pack("!I", _crc(message))


def _read_header(data: bytes, pos: int) -> tuple[Header, int]:
    """The header starting at ``pos`` and the position after it."""
    size = data[pos]
    name = data[pos + 1 : pos + 1 + size].decode("utf-8")
    pos += 1 + size
    kind = HeaderType(data[pos])
    pos += 1
    value: HeaderValue
    if kind in (HeaderType.TRUE, HeaderType.FALSE):
        value = kind is HeaderType.TRUE
    elif kind in _INT_FORMATS:
        fmt = _INT_FORMATS[kind]
        (value,) = fmt.unpack_from(data, pos)
        pos += fmt.size
    else:
        if kind is HeaderType.UUID:
            length, start = 16, pos
        else:
            (length,) = struct.unpack_from("!H", data, pos)
            start = pos + 2
        raw = data[start : start + length]
        if len(raw) != length:
            raise IndexError(f"{kind.name} value runs past the headers")
        value = raw.decode("utf-8") if kind is HeaderType.STRING else raw
        pos = start + length
    return Header(name, value, kind), pos


def _decode_headers(data: bytes, where: str) -> tuple[Header, ...]:
    headers: list[Header] = []
    pos = 0
    while pos < len(data):
        try:
            header, pos = _read_header(data, pos)
        except (IndexError, ValueError, struct.error) as exc:
            raise CodecError(
                f"event-stream {where}: malformed header at byte {pos}: {exc}"
            ) from None
        if any(h.name == header.name for h in headers):
            raise CodecError(f"event-stream {where}: duplicate header {header.name!r}")
        headers.append(header)
    return tuple(headers)


def parse(data: bytes) -> list[Message]:
    """Every message in ``data``. Raises CodecError on a truncated message or a bad CRC."""
    messages: list[Message] = []
    pos = 0
    while pos < len(data):
        where = f"message {len(messages) + 1} at byte {pos}"
        if len(data) - pos < _PRELUDE_LENGTH:
            raise CodecError(
                f"event-stream {where}: truncated prelude ({len(data) - pos} of 12 bytes)"
            )
        total, headers_length, prelude_crc = _PRELUDE.unpack_from(data, pos)
        # check the prelude CRC before trusting its lengths
        if _crc(data[pos : pos + 8]) != prelude_crc:
            raise CodecError(f"event-stream {where}: prelude CRC mismatch")
        if total < _PRELUDE_LENGTH + headers_length + _CRC_LENGTH:
            raise CodecError(
                f"event-stream {where}: total length {total} cannot hold {headers_length} header bytes"
            )
        if len(data) - pos < total:
            raise CodecError(
                f"event-stream {where}: truncated message ({len(data) - pos} of {total} bytes)"
            )
        end = pos + total - _CRC_LENGTH
        (message_crc,) = struct.unpack_from("!I", data, end)
        if _crc(data[pos:end]) != message_crc:
            raise CodecError(f"event-stream {where}: message CRC mismatch")
        headers_start = pos + _PRELUDE_LENGTH
        headers = _decode_headers(data[headers_start : headers_start + headers_length], where)
        messages.append(Message(headers, data[headers_start + headers_length : end]))
        pos += total
    return messages
