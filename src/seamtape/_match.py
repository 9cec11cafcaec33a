"""What of a request counts when comparing it with the tape, and why two requests differ.

A request's key is its method, its canonical URL and its body. Headers are left out:
SDKs stamp them with retry counts, timeouts, idempotency keys, user agents and signatures
that change from run to run without changing what was asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote_plus

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "Redaction",
    "canonical_url",
    "explain",
    "find_secret",
    "redact_headers",
]

REDACTED = "<redacted>"

# Credentials and signing material: never written to a tape.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
        "x-amz-content-sha256",
        "x-amz-date",
    }
)

_SECRET_QUERY = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "api-key",
        "access_token",
        "token",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-amz-date",
    }
)

_SECRET_PATTERNS = [
    ("an API key (sk-…)", re.compile(rb"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}")),
    ("an AWS access key id (AKIA…)", re.compile(rb"(?:AKIA|ASIA)[0-9A-Z]{16}")),
    ("a bearer token", re.compile(rb"[Bb]earer [A-Za-z0-9._~+/=\-]{20,}")),
    ("a Google API key (AIza…)", re.compile(rb"AIza[0-9A-Za-z_\-]{35}")),
]
# A cheap first pass in one C-level scan: most bodies contain none of these.
_SECRET_MARKERS = re.compile(rb"sk-|AKIA|ASIA|earer |AIza")

_url_cache: dict[str, str] = {}


def canonical_url(url: str) -> str:
    """The URL as stored and matched: a password in the userinfo and API keys and signatures
    in the query string masked."""
    cached = _url_cache.get(url)
    if cached is not None:
        return cached
    result = _mask_userinfo(url) if "@" in url else url
    if "?" in result:
        base, _, rest = result.partition("?")
        query, hash_mark, fragment = rest.partition("#")
        # Mask values in place, leaving every other byte of the query as the client sent it.
        fields = [_mask_field(field) for field in query.split("&")]
        result = f"{base}?{'&'.join(fields)}{hash_mark}{fragment}"
    if len(_url_cache) < 4096:
        _url_cache[url] = result
    return result


def _mask_userinfo(url: str) -> str:
    """``scheme://user:secret@host`` as ``scheme://user:<redacted>@host``; a user with no
    password (often a token itself) is masked whole."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:end].rpartition("@")
    if not at:
        return url
    user, colon, _ = userinfo.partition(":")
    masked = f"{user}:{REDACTED}" if colon else REDACTED
    return f"{scheme}://{masked}@{hostport}{rest[end:]}"


def _mask_field(field: str) -> str:
    name, eq, _ = field.partition("=")
    if eq and unquote_plus(name).lower() in _SECRET_QUERY:
        return f"{name}={REDACTED}"
    return field


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers with credential values replaced, keeping every name, its case and its order."""
    return [(k, REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers]


def find_secret(body: bytes) -> str | None:
    """What kind of credential ``body`` seems to contain, if any."""
    if _SECRET_MARKERS.search(body) is None:
        return None
    for label, pattern in _SECRET_PATTERNS:
        if pattern.search(body):
            return label
    return None


_PLACEHOLDER = REDACTED.encode()


@dataclass(frozen=True)
class Redaction:
    """What is masked in request and response bodies before they reach a tape.

    By default the credential patterns ``find_secret`` knows (``sk-…`` keys, AWS key ids,
    bearer tokens, Google API keys) are replaced by ``<redacted>``. ``patterns`` adds regular
    expressions (text or bytes; the whole match is replaced); ``json_paths`` masks the string
    values at paths such as ``$.metadata.user_key`` or ``$.messages[*].content``, wherever that
    whole JSON string occurs in the body. ``defaults=False`` keeps only the user's rules. Every other byte is
    kept as sent, and redacting twice changes nothing, so a replayed request redacted the same
    way compares equal to the recording.
    """

    patterns: tuple[str | bytes | re.Pattern[Any], ...] = ()
    json_paths: tuple[str, ...] = ()
    defaults: bool = True

    def __post_init__(self) -> None:
        self._paths  # noqa: B018  (a bad path is refused when the rules are made, not mid-run)
        self._compiled  # noqa: B018

    @cached_property
    def _compiled(self) -> list[re.Pattern[bytes]]:
        found = [pattern for _, pattern in _SECRET_PATTERNS] if self.defaults else []
        for pattern in self.patterns:
            source = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
            found.append(re.compile(source.encode() if isinstance(source, str) else source))
        return found

    @cached_property
    def _paths(self) -> list[list[str | int]]:
        return [_parse_path(path) for path in self.json_paths]

    def apply(self, body: bytes) -> bytes:
        """``body`` with every secret span replaced by ``<redacted>`` (the same object when
        nothing matched, so callers can tell cheaply)."""
        out = body
        if self._paths:
            out = self._mask_paths(out)
        if self.patterns or (self.defaults and _SECRET_MARKERS.search(out) is not None):
            for pattern in self._compiled:
                out = pattern.sub(_PLACEHOLDER, out)
        return body if out == body else out

    def _mask_paths(self, body: bytes) -> bytes:
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return body
        secrets = {s for path in self._paths for s in _values_at(value, path) if s != REDACTED}
        # Whole JSON strings only, as the client may have escaped them: a short value is never
        # masked inside other text.
        for secret in secrets:
            for form in {json.dumps(secret, ensure_ascii=False), json.dumps(secret)}:
                body = body.replace(form.encode(), b'"' + _PLACEHOLDER + b'"')
        return body


_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*|\*)|\[(\d+|\*)\]|\[\"((?:[^\"\\]|\\.)*)\"\]")


def _parse_path(path: str) -> list[str | int]:
    """``$.a.b[0][*]["odd key"]`` as ["a", "b", 0, "*", "odd key"]."""
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with $: {path!r}")
    parts: list[str | int] = []
    at = 1
    while at < len(path):
        found = _PATH_PART.match(path, at)
        if found is None:
            raise ValueError(f"cannot read JSON path {path!r} at {path[at:]!r}")
        name, index, quoted = found.groups()
        if name is not None:
            parts.append(name)
        elif index is not None:
            parts.append("*" if index == "*" else int(index))
        else:
            parts.append(json.loads(f'"{quoted}"'))
        at = found.end()
    return parts


def _values_at(value: Any, path: list[str | int]) -> list[str]:
    """The string values at ``path`` in ``value`` (``*`` matches every key or index)."""
    if not path:
        return [value] if isinstance(value, str) else []
    head, rest = path[0], path[1:]
    if head == "*":
        children = value.values() if isinstance(value, dict) else value
        if not isinstance(value, dict | list):
            return []
        return [s for child in children for s in _values_at(child, rest)]
    if isinstance(value, dict) and isinstance(head, str) and head in value:
        return _values_at(value[head], rest)
    if isinstance(value, list) and isinstance(head, int) and head < len(value):
        return _values_at(value[head], rest)
    return []


_MISSING = object()


def explain(recorded: bytes, new: bytes) -> tuple[str, Any, Any]:
    """The first place two bodies differ: a JSON path, or a byte offset for non-JSON bodies.

    Returns ``(path, recorded value, new value)``; ``("", None, None)`` when they are equal.
    """
    if recorded == new:
        return "", None, None
    try:
        a, b = json.loads(recorded), json.loads(new)
        found = _first_json_difference(a, b, "$")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _byte_diff(recorded, new)
    if found is None:  # same JSON, different bytes: key order or spacing
        return _byte_diff(recorded, new)
    path, old, fresh = found
    return path, _show(old), _show(fresh)


def _first_json_difference(a: Any, b: Any, path: str) -> tuple[str, Any, Any] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            child = f"{path}.{key}" if _plain_key(key) else f"{path}[{json.dumps(key)}]"
            found = _first_json_difference(a.get(key, _MISSING), b.get(key, _MISSING), child)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            old = a[i] if i < len(a) else _MISSING
            fresh = b[i] if i < len(b) else _MISSING
            found = _first_json_difference(old, fresh, f"{path}[{i}]")
            if found:
                return found
        return None
    if type(a) is type(b) and a == b:
        return None
    return path, a, b


def _plain_key(key: str) -> bool:
    return key.isidentifier()


def _show(value: Any) -> Any:
    return "<absent>" if value is _MISSING else value


def _byte_diff(recorded: bytes, new: bytes) -> tuple[str, Any, Any]:
    offset = next(
        (i for i, (x, y) in enumerate(zip(recorded, new, strict=False)) if x != y),
        min(len(recorded), len(new)),
    )
    start = max(0, offset - 20)
    return (
        f"byte {offset} (of {len(recorded)} recorded, {len(new)} new)",
        recorded[start : offset + 40],
        new[start : offset + 40],
    )
