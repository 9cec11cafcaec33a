"""Ignorable JSON paths: request fields an out-of-process client cannot make deterministic.

An agent in another process reads the clock and makes ids on its own (the draws of
``NondetSource`` are not available to it), so a field such as a timestamp or a request id
in its request body differs on every run. A replay given such paths serves a request whose
body differs from the recorded one *only* there as if it were the recorded one: the cursor
then matches, serves and digests the recorded bytes. Any other difference still diverges.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from seamtape._errors import SeamtapeError

__all__ = ["IgnoringPaths", "parse_path", "without"]

# A path as divergences name it: $.key, $["odd key"], $[0], and [*] for every item.
_STEP = re.compile(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\*)\]|\[("(?:[^"\\]|\\.)*")\]')
_ANY = object()

Path = tuple[Any, ...]  # keys (str), indexes (int) and _ANY


def parse_path(text: str) -> Path:
    """``$.metadata.user_id`` → ("metadata", "user_id"); SeamtapeError for a malformed one."""
    if not text.startswith("$"):
        raise SeamtapeError(f"ignore path {text!r}: a JSON path starts with $, e.g. $.metadata.id")
    steps: list[Any] = []
    at = 1
    while at < len(text):
        found = _STEP.match(text, at)
        if found is None:
            raise SeamtapeError(
                f"ignore path {text!r}: cannot read it from {text[at:]!r} "
                '(use .key, ["key"], [0] or [*])'
            )
        key, index, quoted = found.groups()
        if key is not None:
            steps.append(key)
        elif index is not None:
            steps.append(_ANY if index == "*" else int(index))
        else:
            steps.append(json.loads(quoted))
        at = found.end()
    if not steps:
        raise SeamtapeError("ignore path '$' would ignore the whole body")
    return tuple(steps)


def without(doc: Any, paths: Iterable[Path]) -> Any:
    """A copy of ``doc`` with the values at ``paths`` removed (absent paths are no error)."""
    doc = copy.deepcopy(doc)
    for path in paths:
        _drop(doc, path)
    return doc


def _drop(node: Any, path: Path) -> None:
    head, rest = path[0], path[1:]
    keyed = isinstance(node, dict) and isinstance(head, str) and head in node
    indexed = isinstance(node, list) and isinstance(head, int) and 0 <= head < len(node)
    if head is _ANY:
        children = list(range(len(node))) if isinstance(node, list) else []
    elif keyed or indexed:
        children = [head]
    else:
        return
    if not rest:
        if isinstance(node, dict):
            for child in children:
                del node[child]
        else:
            for child in children:  # keep the positions of the other items
                node[child] = None
        return
    for child in children:
        _drop(node[child], rest)


class IgnoringPaths:
    """Given the recorded requests of a run, turns a request that differs from the next
    unserved recorded one with its method and URL only at ``paths`` into those recorded bytes.

    ``canonical`` is the URL the cursor compares (keys in query strings masked).
    """

    def __init__(
        self,
        recorded: Sequence[tuple[str, str, Callable[[], bytes]]],
        paths: Sequence[str],
        canonical: Callable[[str], str],
    ) -> None:
        self.paths = [parse_path(p) for p in paths]
        self._canonical = canonical
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], list[Callable[[], bytes]]] = {}
        for method, url, body in recorded:
            self._queues.setdefault((method, url), []).append(body)
        self.ignored = 0  # requests served although they differed at an ignored path

    def __call__(self, method: str, url: str, body: bytes) -> bytes:
        with self._lock:
            queue = self._queues.get((method, self._canonical(url)))
            if not queue:
                return body
            for position, recorded in enumerate(queue):
                old = recorded()
                if old == body or self._same_but_ignored(old, body):
                    del queue[position]
                    if old != body:
                        self.ignored += 1
                    return old
            return body

    def _same_but_ignored(self, old: bytes, new: bytes) -> bool:
        try:
            a, b = json.loads(old), json.loads(new)
        except (ValueError, UnicodeDecodeError):
            return False
        return bool(without(a, self.paths) == without(b, self.paths))
