"""Policies: what the simulated model answers. Small and deterministic, not a language model.

A policy gets the decoded request (a ``Step`` with its request fields set) and returns a copy
with the response fields filled in: ``text``, ``tool_calls``, ``stop_reason``, ``usage`` and
``response_id``. The server encodes that ``Step`` in the caller's wire format.

- ``ScriptedPolicy`` serves a fixed script of turns.
- ``StochasticPolicy`` derives every choice from a hash of (seed, conversation, sample index),
  so it drives a tool-using agent reproducibly, reacts to changed inputs, and can resample.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeAlias, runtime_checkable

from seamtape.wire import Step, ToolCall, ToolSpec, Usage

# Normalized stop reasons (the codecs map them to each provider's vocabulary).
STOP_END = "end_turn"
STOP_TOOL = "tool_use"

Turn: TypeAlias = "str | Sequence[ToolCall | Mapping[str, Any]]"


@runtime_checkable
class Policy(Protocol):
    """Fills in the answer to one request."""

    def respond(self, step: Step) -> Step:
        """Return a copy of ``step`` with the response fields set."""
        ...


class ScriptExhaustedError(LookupError):
    """A ``ScriptedPolicy`` was asked for a turn its script does not have."""


# --- shared helpers ---------------------------------------------------------------------------


class Draws:
    """A stream of deterministic pseudo-random draws from a hash of ``parts``.

    Built on sha256 in counter mode rather than ``random.Random`` so the same seed gives the
    same draws on every Python version: tapes and tests depend on these exact values.
    """

    def __init__(self, *parts: Any) -> None:
        blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
        self._root = hashlib.sha256(blob.encode()).digest()
        self._n = 0

    def u64(self) -> int:
        block = hashlib.sha256(self._root + self._n.to_bytes(8, "big")).digest()
        self._n += 1
        return int.from_bytes(block[:8], "big")

    def uniform(self) -> float:
        """A float in [0, 1)."""
        return self.u64() / 2.0**64

    def below(self, n: int) -> int:
        """An int in [0, n)."""
        return self.u64() % n

    def choice(self, seq: Sequence[Any]) -> Any:
        return seq[self.below(len(seq))]

    def hex(self, n: int) -> str:
        out = ""
        while len(out) < n:
            out += f"{self.u64():016x}"
        return out[:n]


def conversation_key(step: Step) -> str:
    """A stable digest of what the model was shown: system, tools, and every turn.

    Tool call ids are left out on purpose: providers and agents re-number them (Gemini has
    none), and the same conversation should get the same answer on every wire format.
    """
    doc = {
        "system": step.system,
        "tools": [[t.name, t.description, t.schema] for t in step.tools],
        "messages": [
            [
                m.role,
                m.text,
                [[c.name, c.arguments] for c in m.tool_calls],
                [[r.content, r.is_error] for r in m.tool_results],
            ]
            for m in step.messages
        ],
        "tool_results": [[r.content, r.is_error] for r in step.tool_results],
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def turn_index(step: Step) -> int:
    """How many times the model has already answered in this conversation."""
    return sum(1 for m in step.messages if m.role == "assistant")


_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """A deterministic token count: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def usage_for(step: Step, text: str, tool_calls: Sequence[ToolCall]) -> Usage:
    """Token usage from word counts of the request and of the answer."""
    seen = [step.system]
    seen += [f"{t.name} {t.description} {json.dumps(t.schema, sort_keys=True)}" for t in step.tools]
    for m in step.messages:
        seen.append(m.text)
        seen += [f"{c.name} {json.dumps(c.arguments, sort_keys=True)}" for c in m.tool_calls]
        seen += [r.content for r in m.tool_results]
    said = [text] + [f"{c.name} {json.dumps(c.arguments, sort_keys=True)}" for c in tool_calls]
    return Usage(
        input_tokens=max(1, sum(count_tokens(s) for s in seen)),
        output_tokens=max(1, sum(count_tokens(s) for s in said)),
    )


def answer(
    step: Step, *, text: str = "", tool_calls: Sequence[ToolCall] = (), response_id: str
) -> Step:
    """A copy of ``step`` carrying this answer, with stop reason and usage derived from it."""
    calls = list(tool_calls)
    return replace(
        step,
        text=text,
        tool_calls=calls,
        stop_reason=STOP_TOOL if calls else STOP_END,
        usage=usage_for(step, text, calls),
        response_id=response_id,
    )


# --- scripted ---------------------------------------------------------------------------------


class ScriptedPolicy:
    """Serves a fixed script: each turn is a text, or a list of tool calls.

    A tool call is a ``ToolCall`` or a mapping ``{"name": ..., "arguments": {...}}`` (an ``id``
    is generated when missing). By default turns are served in arrival order across all
    requests; with ``by_turn=True`` (implied when ``turns`` is a mapping) the turn is picked by
    the conversation's own turn index, so a script replays the same conversation no matter
    what other runs hit the simulator in between.
    """

    seed = 0
    spec: str | None = None  # set when read from a file, so a run can store where

    def __init__(self, turns: Sequence[Turn] | Mapping[int, Turn], *, by_turn: bool = False):
        if isinstance(turns, Mapping):
            self._turns: dict[int, Turn] = dict(turns)
            by_turn = True
        else:
            self._turns = dict(enumerate(turns))
        self.by_turn = by_turn
        self._next = 0
        self._lock = threading.Lock()

    def respond(self, step: Step) -> Step:
        if self.by_turn:
            index = turn_index(step)
        else:
            with self._lock:
                index, self._next = self._next, self._next + 1
        if index not in self._turns:
            mode = "conversation turn" if self.by_turn else "request"
            raise ScriptExhaustedError(
                f"ScriptedPolicy has no turn for {mode} {index} "
                f"(script has {len(self._turns)} turns); add turns or use StochasticPolicy"
            )
        turn = self._turns[index]
        response_id = Draws("scripted", index).hex(24)
        if isinstance(turn, str):
            return answer(step, text=turn, response_id=response_id)
        calls = [_as_tool_call(call, index, j) for j, call in enumerate(turn)]
        return answer(step, tool_calls=calls, response_id=response_id)


def _as_tool_call(call: ToolCall | Mapping[str, Any], turn: int, j: int) -> ToolCall:
    if isinstance(call, ToolCall):
        return call
    return ToolCall(
        id=str(call.get("id") or f"call_{turn:03d}_{j}"),
        name=str(call["name"]),
        arguments=dict(call.get("arguments") or {}),
    )


# --- stochastic -------------------------------------------------------------------------------

_OPENINGS = (
    "Here is what I found.",
    "All done.",
    "Done.",
    "I have an answer.",
    "Summary follows.",
)
_FILLER = (
    "the result looks consistent",
    "no further action is needed",
    "this should cover the request",
    "the details are above",
    "let me know if anything is missing",
    "everything checks out",
)
_WORDS = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda")


class StochasticPolicy:
    """A seeded, hash-driven policy that behaves like a small tool-using model.

    Every choice is drawn from a hash of (``seed``, the conversation so far *including tool
    results*, a sample index). So the same conversation gets the same answer, while a changed
    input (say, a different tool result) can send the run down another path.

    When tools are declared it either calls one of them, with arguments built from the tool's
    JSON schema and words of the conversation, or gives a final answer that quotes the latest
    tool result. ``tools_plan`` shapes that:

    - ``None``: the first turn calls a declared tool (unless ``first_tool=False``), each
      later turn calls one with probability ``tool_rate``, for at most ``max_tool_turns``
      turns, then it answers;
    - an int ``n``: exactly ``n`` tool-calling turns (tools chosen by hash), then answers;
    - a sequence of tool names: calls them in that order, then answers (a name the request
      does not declare ends the plan early).

    ``temperature`` is the chance that a resample (sample index > 0) departs from the greedy
    answer: at 0 every sample is the greedy answer; at 1 each index is an independent draw.
    At ``temperature`` 0 a live answer is a pure function of the conversation, so two runs
    get byte-identical answers even on one long-lived simulator. Above 0, a live request uses
    sample index ``k`` for the ``k``-th repeat of an identical conversation seen by this policy
    (a retry of the same request), so a retry can differ, as with a real model.
    """

    def __init__(
        self,
        seed: int = 0,
        temperature: float = 0.0,
        *,
        tools_plan: int | Sequence[str] | None = None,
        tool_rate: float = 0.7,
        max_tool_turns: int = 3,
        first_tool: bool = True,
    ) -> None:
        if temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 <= tool_rate <= 1:
            raise ValueError("tool_rate must be between 0 and 1")
        self.seed = seed
        self.temperature = temperature
        if isinstance(tools_plan, str):
            tools_plan = (tools_plan,)
        self.tools_plan = tools_plan if isinstance(tools_plan, int | None) else tuple(tools_plan)
        self.tool_rate = tool_rate
        self.max_tool_turns = max_tool_turns
        self.first_tool = first_tool
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def respond(self, step: Step) -> Step:
        """Answer a live request.

        At ``temperature`` 0 the answer (ids included) is a pure function of the conversation.
        Above 0 the sample index is how often this policy has already seen the conversation.
        """
        key = conversation_key(step)
        index = 0
        if self.temperature > 0:
            with self._lock:
                index = self._seen.get(key, 0)
                self._seen[key] = index + 1
        return self._sample(step, key, index)

    def resample(self, step: Step, index: int) -> Step:
        """The answer for sample ``index`` of this request; ``0`` is the greedy answer.

        Pure: it does not count as a live request. Use indexes 1, 2, ... to draw alternatives
        to a recorded step (at ``temperature`` 0 they all equal the greedy answer).
        """
        if index < 0:
            raise ValueError("sample index must be >= 0")
        return self._sample(step, conversation_key(step), index)

    def _sample(self, step: Step, key: str, index: int) -> Step:
        draws = Draws(self.seed, key, "greedy")
        if index > 0 and self.temperature > 0:
            depart = Draws(self.seed, key, "depart", index).uniform()
            if depart < min(self.temperature, 1.0):
                draws = Draws(self.seed, key, "sample", index)
        response_id = Draws(self.seed, key, "id", index).hex(24)
        tool = self._pick_tool(step, draws)
        if tool is None:
            return answer(step, text=_final_text(step, draws), response_id=response_id)
        call_id = "call_" + Draws(self.seed, key, "call", index).hex(20)
        arguments = _arguments(tool.schema, draws, _conversation_words(step))
        call = ToolCall(id=call_id, name=tool.name, arguments=arguments)
        return answer(step, tool_calls=[call], response_id=response_id)

    def _pick_tool(self, step: Step, draws: Draws) -> ToolSpec | None:
        """The tool spec to call this turn, or ``None`` to give the final answer."""
        if not step.tools:
            return None
        turn = turn_index(step)
        plan = self.tools_plan
        if isinstance(plan, tuple):
            by_name = {t.name: t for t in step.tools}
            return by_name.get(plan[turn]) if turn < len(plan) else None
        if isinstance(plan, int):
            return draws.choice(step.tools) if turn < plan else None
        if turn >= self.max_tool_turns:
            return None
        # Drawn even on a first turn that always calls, so the draws after it do not move.
        skip = draws.uniform() >= self.tool_rate
        if skip and not (turn == 0 and self.first_tool):
            return None
        return draws.choice(step.tools)

    @property
    def spec(self) -> str:
        """This policy as ``policy_from_spec`` reads it (only the options that differ)."""
        defaults = StochasticPolicy()
        options = []
        for name in ("seed", "temperature", "tool_rate", "max_tool_turns", "first_tool"):
            value = getattr(self, name)
            if value != getattr(defaults, name):
                options.append(f"{name}={str(value).lower() if isinstance(value, bool) else value}")
        if self.tools_plan is not None:
            plan = self.tools_plan
            options.append(f"tools_plan={plan if isinstance(plan, int) else '|'.join(plan)}")
        return "stochastic" + (":" + ",".join(options) if options else "")


def _conversation_words(step: Step) -> list[str]:
    """Words an argument can be built from: the latest user text, then the latest results."""
    texts = [m.text for m in step.messages if m.role == "user" and m.text][-1:]
    texts += [r.content for r in step.tool_results]
    words = [w for t in texts for w in re.findall(r"[A-Za-z][A-Za-z0-9_-]{2,}", t)]
    return words or list(_WORDS)


def _arguments(schema: Mapping[str, Any], draws: Draws, words: list[str]) -> dict[str, Any]:
    value = _value(schema or {"type": "object"}, "", draws, words, depth=0)
    return value if isinstance(value, dict) else {"value": value}


def _value(schema: Mapping[str, Any], name: str, draws: Draws, words: list[str], depth: int) -> Any:
    """A value that satisfies the common JSON Schema keywords of ``schema``."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return draws.choice(schema["enum"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return _value(schema[combinator][0], name, draws, words, depth)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    # google-genai sends its Type enum upper-case ("OBJECT"); JSON Schema writes lower-case.
    kind = str(kind).lower()
    if kind == "object":
        if depth > 4:
            return {}
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or props)
        return {
            key: _value(sub, key, draws, words, depth + 1)
            for key, sub in props.items()
            if key in required or draws.below(2)
        }
    if kind == "array":
        if depth > 4:
            return []
        count = max(int(schema.get("minItems", 1)), 1)
        return [_value(schema.get("items") or {}, name, draws, words, depth + 1)] * count
    if kind == "integer":
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 99))
        return low + draws.below(max(high - low, 0) + 1)
    if kind == "number":
        least = float(schema.get("minimum", 0.0))
        most = float(schema.get("maximum", least + 100.0))
        return round(least + draws.uniform() * (most - least), 2)
    if kind == "boolean":
        return bool(draws.below(2))
    if kind == "null":
        return None
    count = 1 + draws.below(3)
    return " ".join(draws.choice(words) for _ in range(count))


def _final_text(step: Step, draws: Draws) -> str:
    parts = [draws.choice(_OPENINGS)]
    if step.tool_results:
        names = {c.id: c.name for m in step.messages for c in m.tool_calls}
        names.update({t.name: t.name for t in step.tools})  # Gemini matches results by name
        result = step.tool_results[-1]
        name = names.get(result.call_id, "the tool")
        verb = "failed with" if result.is_error else "returned"
        parts.append(f"{name} {verb}: {_clip(result.content)}.")
    else:
        asked = [m.text for m in step.messages if m.role == "user" and m.text]
        if asked:
            parts.append(f'You asked: "{_clip(asked[-1])}".')
    parts.append(draws.choice(_FILLER).capitalize() + ".")
    return " ".join(parts)


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- spec -------------------------------------------------------------------------------------


def policy_from_spec(spec: str | None) -> Policy:
    """Build a policy from a CLI spec.

    - ``None``, ``""`` or ``"stochastic"``: ``StochasticPolicy()``;
    - ``"stochastic:seed=3,temperature=0.5,tool_rate=0.5,max_tool_turns=2,tools_plan=a|b,
      first_tool=false"`` (``tools_plan`` is an int or ``|``-separated tool names);
    - ``"scripted:FILE.json"``: a JSON list of turns (a string, or a list of
      ``{"name", "arguments"}``), or ``{"turns": [...], "by_turn": true}``.
    """
    kind, _, rest = (spec or "stochastic").partition(":")
    if kind == "stochastic":
        return StochasticPolicy(**_stochastic_options(rest))
    if kind == "scripted":
        if not rest:
            raise ValueError("scripted policy needs a file: 'scripted:PATH.json'")
        path = Path(rest)
        doc = json.loads(path.read_text())
        if isinstance(doc, dict):
            policy = ScriptedPolicy(doc["turns"], by_turn=bool(doc.get("by_turn", False)))
        else:
            policy = ScriptedPolicy(doc)
        policy.spec = f"scripted:{path.resolve()}"
        return policy
    raise ValueError(f"unknown policy {spec!r}: use 'stochastic[:k=v,...]' or 'scripted:FILE.json'")


def policy_spec(policy: Policy) -> str | None:
    """The spec that rebuilds ``policy`` (stored with a run), or None for a policy built in
    code that no spec describes."""
    spec = getattr(policy, "spec", None)
    return spec if isinstance(spec, str) else None


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"expected true or false, not {value!r}")
    return lowered in ("true", "1", "yes")


def _stochastic_options(text: str) -> dict[str, Any]:
    casts: dict[str, Callable[[str], Any]] = {
        "seed": int,
        "temperature": float,
        "tool_rate": float,
        "max_tool_turns": int,
        "tools_plan": lambda v: int(v) if v.isdigit() else v.split("|"),
        "first_tool": _boolean,
    }
    options: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in casts:
            raise ValueError(f"unknown stochastic option {name!r}; known: {', '.join(casts)}")
        options[name] = casts[name](value)
    return options
