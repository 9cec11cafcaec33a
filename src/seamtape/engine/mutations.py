"""A small library of step mutations for ``blame(perturb=...)`` and ``fork(edit=...)``.

A mutation reads a step's decoded ``Step`` (what the model answered) and returns the fields to
change, as ``fork(edit=...)`` takes them, or ``None`` when it does not apply to that step:

- ``drop_tool_call``: the answer loses its last tool call (the agent never runs that tool);
- ``empty_text``: the answer's text is emptied (tool calls are kept);
- ``truncate_text``: the answer's text is cut to its first half, at a word boundary;
- ``swap_tool_args``: the first tool call with two or more distinct argument values gets them
  rotated one key along (``{"a": 1, "b": 2}`` becomes ``{"a": 2, "b": 1}``); failing that, the
  first two tool calls swap their arguments.

The codec re-encodes the edited ``Step`` in the step's own wire format. A mutation that leaves
the response byte-identical is no perturbation; blame does not count it as a trial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "MUTATIONS",
    "Mutation",
    "drop_tool_call",
    "empty_text",
    "swap_tool_args",
    "truncate_text",
]

# A Step (seamtape.wire.Step) -> the fields to edit, or None when the mutation does not apply.
Mutation = Callable[[Any], dict[str, Any] | None]


def _call(call: Any, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """A tool call as the plain dict ``fork(edit=...)`` accepts (and a run's lineage stores)."""
    return {
        "id": call.id,
        "name": call.name,
        "arguments": dict(call.arguments) if arguments is None else arguments,
        "raw_arguments": call.raw_arguments if arguments is None else None,
    }


def drop_tool_call(step: Any) -> dict[str, Any] | None:
    if not step.tool_calls:
        return None
    return {"tool_calls": [_call(c) for c in step.tool_calls[:-1]]}


def empty_text(step: Any) -> dict[str, Any] | None:
    return {"text": ""} if step.text else None


def truncate_text(step: Any) -> dict[str, Any] | None:
    text = step.text
    cut = text.rfind(" ", 0, len(text) // 2 + 1)
    kept = text[: cut if cut > 0 else len(text) // 2].rstrip()
    return {"text": kept} if kept != text else None


def swap_tool_args(step: Any) -> dict[str, Any] | None:
    calls = list(step.tool_calls)
    for i, call in enumerate(calls):
        keys = list(call.arguments)
        values = [call.arguments[k] for k in keys]
        if len(keys) >= 2 and any(v != values[0] for v in values[1:]):
            rotated = dict(zip(keys, values[-1:] + values[:-1], strict=True))
            edited = [_call(c) for c in calls]
            edited[i] = _call(call, rotated)
            return {"tool_calls": edited}
    if len(calls) >= 2 and calls[0].arguments != calls[1].arguments:
        edited = [_call(c) for c in calls]
        edited[0] = _call(calls[0], dict(calls[1].arguments))
        edited[1] = _call(calls[1], dict(calls[0].arguments))
        return {"tool_calls": edited}
    return None


MUTATIONS: dict[str, Mutation] = {
    "drop_tool_call": drop_tool_call,
    "empty_text": empty_text,
    "truncate_text": truncate_text,
    "swap_tool_args": swap_tool_args,
}
