"""The oracle: grades a run's result as success or failure (see ``oracle_from``)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seamtape._agents import load_agent
from seamtape._errors import SeamtapeError
from seamtape._steps import steps_of
from seamtape.tape import Tape

__all__ = ["SPEC", "Oracle", "RunView", "oracle_from", "passed"]

SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # package.module:function
_SPEC = SPEC


@dataclass
class RunView:
    """The run an oracle may look at: its tape and id, read on demand."""

    tape: str
    id: str

    def info(self) -> Any:
        """The run's ``RunInfo`` (status, result, lineage)."""
        with Tape(self.tape) as t:
            return t.run(self.id)

    def steps(self) -> list[Any]:
        """Each exchange decoded to a ``wire.Step`` (None where no codec applies)."""
        with Tape(self.tape) as t:
            return steps_of(t, self.id)


Oracle = Callable[..., bool] | str


def oracle_from(spec: Oracle) -> Callable[[Any, RunView | None], bool]:
    """A judge ``(result, run) -> success`` from a callable or one of the string shorthands.

    - a callable ``(result) -> bool`` or ``(result, run: RunView) -> bool``;
    - ``"pkg.mod:fn"``: that callable, imported;
    - a JSON-path test: ``PATH``, ``PATH == VALUE``, ``PATH != VALUE`` or ``PATH ~= REGEX``,
      where PATH is ``$`` followed by ``.key``, ``[0]`` or ``["key"]`` steps, VALUE is a JSON
      literal (``true``, ``3``, ``"Lisbon"``; bare text is a string) and ``~=`` searches the
      value (a string as is, anything else as JSON). A bare PATH tests truthiness. A path
      that is missing from the result fails every test. ``"$.answer ~= Lisbon"``,
      ``"$.ok == true"``;
    - anything else is a regex searched in ``json.dumps(result)`` (prefix ``re:`` to force a
      regex that looks like one of the forms above).
    """
    if callable(spec):
        return _judge(spec)
    if not isinstance(spec, str):
        raise SeamtapeError(f"an oracle is a callable or a string, not {type(spec).__name__}")
    if spec.startswith("re:"):
        return _regex_judge(spec[3:])
    if _SPEC.match(spec):
        return _judge(load_agent(spec))
    if spec.lstrip().startswith("$"):
        return _path_judge(spec)
    return _regex_judge(spec)


def _judge(fn: Callable[..., Any]) -> Callable[[Any, RunView | None], bool]:
    if _wants_run(fn):

        def reads(result: Any, run: RunView | None) -> bool:
            return passed(fn(result, run))

        reads.reads_run = True  # type: ignore[attr-defined]
        return reads
    return lambda result, run: passed(fn(result))


def passed(verdict: Any) -> bool:
    """One notion of an oracle's answer: a bool, or an outcome string ("success" passes),
    as ``seamtape check-replay`` reads it too."""
    if isinstance(verdict, str):
        return verdict == "success"
    return bool(verdict)


def _wants_run(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def _regex_judge(pattern: str) -> Callable[[Any, RunView | None], bool]:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise SeamtapeError(f"oracle {pattern!r} is not a valid regex: {exc}") from None
    return lambda result, run: compiled.search(_as_json(result)) is not None


_TEST = re.compile(r"^\s*(\$\S*?)\s*(?:(==|!=|~=)\s*(.*?))?\s*$", re.S)
_SEGMENT = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")
_MISSING: Any = object()


def _path_judge(test: str) -> Callable[[Any, RunView | None], bool]:
    found = _TEST.match(test)
    path = _path(found.group(1)) if found else None
    if found is None or path is None or (found.group(2) and not found.group(3)):
        raise SeamtapeError(
            f"oracle {test!r} is not a JSON-path test; write e.g. '$.answer ~= Lisbon' or "
            "'$.ok == true' (prefix 're:' for a regex)"
        )
    op, raw = found.group(2), found.group(3)
    if op == "~=":
        try:
            pattern = re.compile(raw)
        except re.error as exc:
            raise SeamtapeError(f"oracle {test!r}: {raw!r} is not a valid regex: {exc}") from None
    else:
        try:
            expected = json.loads(raw) if op else None
        except ValueError:
            expected = raw  # bare text is a string: $.city == Lisbon

    def judge(result: Any, run: RunView | None) -> bool:
        value = _follow(result, path)
        if value is _MISSING:
            return False
        if op is None:
            return bool(value)
        if op == "~=":
            return pattern.search(value if isinstance(value, str) else _as_json(value)) is not None
        return (value == expected) == (op == "==")

    return judge


def _path(text: str) -> list[str | int] | None:
    rest, out = text[1:], []
    while rest:
        found = _SEGMENT.match(rest)
        if found is None:
            return None
        key, index, dq, sq = found.groups()
        out.append(int(index) if index is not None else (key or dq or sq or ""))
        rest = rest[found.end() :]
    return out


def _follow(value: Any, path: list[str | int]) -> Any:
    for part in path:
        in_list = isinstance(part, int) and isinstance(value, list) and part < len(value)
        in_dict = isinstance(part, str) and isinstance(value, dict) and part in value
        if not (in_list or in_dict):
            return _MISSING
        value = value[part]
    return value


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
