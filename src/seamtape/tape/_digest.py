"""The digest: a hash chain over a run's exchanges, in step order, and its draws."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_SEED = b"seamtape digest v1"


def exchange_hash(
    method: str,
    url: str,
    request_body: bytes,
    status: int,
    response_headers_json: str,
    response_body: bytes,
    error_json: str | None,
) -> bytes:
    """Hash of one exchange's canonical form; the bodies are given by their sha256."""
    text = "\0".join((method, url, str(status), response_headers_json, error_json or ""))
    return hashlib.sha256(b"%s\0%s%s" % (text.encode(), request_body, response_body)).digest()


class Digest:
    """Accumulates exchange hashes by step and draws in order; ``hexdigest`` chains them."""

    def __init__(self) -> None:
        self._steps: dict[int, bytes | tuple[Any, ...]] = {}
        self._draws = hashlib.sha256(_SEED + b" draws")

    def add_exchange(self, step: int, digest: bytes) -> None:
        self._steps[step] = digest

    def add_exchange_parts(self, step: int, *parts: Any) -> None:
        """Like ``add_exchange`` with ``exchange_hash``'s arguments, hashed when read: replay
        keeps the hashing off each request's path."""
        self._steps[step] = parts

    def add_draw(self, kind: str, value: Any) -> None:
        self._draws.update(kind.encode() + b"\0" + json.dumps(value).encode() + b"\0")

    def hexdigest(self) -> str:
        chain = hashlib.sha256(_SEED).digest()
        for step in sorted(self._steps):
            entry = self._steps[step]
            if isinstance(entry, tuple):
                entry = self._steps[step] = exchange_hash(*entry)
            chain = hashlib.sha256(chain + entry).digest()
        return hashlib.sha256(chain + self._draws.digest()).hexdigest()
