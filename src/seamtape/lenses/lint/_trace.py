"""A run as the rules see it: turns (one per exchange), and the tool calls paired with results.

Tool calls come from the model's answers; their results from the next request of the same
conversation, both decoded by the wire codecs. A conversation is told apart by its agent
(system prompt and tool set) and its first user message, so a sub-agent's calls never pair
with its parent's results.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from seamtape.wire import Step, ToolCall, ToolResult, ToolSpec

_ERROR_TEXT = re.compile(r"^\s*(error|exception|traceback|failed|failure)\b", re.IGNORECASE)
_ERROR_JSON = re.compile(r'^\s*\{\s*"(error|exception)"\s*:', re.IGNORECASE)


def _digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def call_key(name: str, arguments: dict[str, Any], raw: str | None = None) -> str:
    """A tool call with its arguments in canonical form: equal keys mean the same call."""
    args = raw if raw is not None else json.dumps(arguments, sort_keys=True, separators=(",", ":"))
    return f"{name}({args})"


@dataclass
class Call:
    """A tool call the model made, and the results the agent sent back for it."""

    index: int  # 0-based, in the order calls were made across the run
    step: int  # the exchange whose answer made the call
    conversation: str
    call: ToolCall
    declared: ToolSpec | None  # the tool as the same request declared it
    results: list[tuple[int, ToolResult]] = field(default_factory=list)  # (step carrying it, …)
    key: str = field(init=False)  # the call in canonical form, computed once: rules compare it
    _failure: tuple[ToolResult, str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.key = call_key(self.call.name, self.call.arguments, self.call.raw_arguments)

    @property
    def name(self) -> str:
        return self.call.name

    @property
    def result(self) -> ToolResult | None:
        return self.results[0][1] if self.results else None

    @property
    def failure(self) -> str:
        """Why its (first) result reads as a failure, or "" (also "" with no result yet)."""
        result = self.result
        if result is None:
            return ""
        if self._failure is None or self._failure[0] is not result:
            self._failure = (result, failed_result(result))
        return self._failure[1]

    @property
    def result_step(self) -> int | None:
        return self.results[0][0] if self.results else None


def failed_result(result: ToolResult, patterns: list[re.Pattern[str]] | None = None) -> str:
    """Why a tool result reads as a failure ("error", "empty"), or "" when it does not."""
    if result.is_error:
        return "error"
    if not result.content.strip():
        return "empty"
    for pattern in patterns if patterns is not None else [_ERROR_TEXT, _ERROR_JSON]:
        if pattern.search(result.content):
            return "error"
    return ""


@dataclass
class Turn:
    """One exchange: the request the agent sent and what came back."""

    seq: int
    step: Step | None  # None: no codec decoded it (not a model call, or a cut stream)
    method: str
    url: str
    status: int
    error: dict[str, str] | None  # a transport error, e.g. the connection dropped mid-stream
    started: float
    ended: float
    request_hash: bytes
    stream: bool = False
    response_body: bytes | None = None  # kept for stream turns, whose framing rules check
    pending: bool = False  # a guard's request that has not left yet: no response
    agent: str = ""
    conversation: str = ""
    fresh: bool = False  # the request opens a conversation (no model turn in it yet)
    calls: list[Call] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        """Whether the model answered (a decoded 2xx response)."""
        return (
            not self.pending
            and self.step is not None
            and self.status < 400
            and self.step.stop_reason != "error"
        )

    @property
    def http_failed(self) -> bool:
        return not self.pending and (self.status >= 400 or self.status == 0)


@dataclass
class Trace:
    """A run's turns and calls, in order; ``started`` is when the run began (Unix time)."""

    turns: list[Turn]
    calls: list[Call]
    orphans: list[tuple[int, ToolResult]]  # results that answer no call the model made
    started: float
    now: float  # the time the run is judged at: its end, or now for a live run
    run: str = ""
    complete: bool = True  # the run has ended (rules about what must still happen wait for it)

    def conversation_turns(self, conversation: str) -> list[Turn]:
        return [t for t in self.turns if t.conversation == conversation]


def agent_of(step: Step) -> str:
    """A sub-agent's identity: its system prompt and tool set."""
    return _digest(step.system, sorted(t.name for t in step.tools))


def _first_user_text(step: Step) -> str:
    for message in step.messages:
        if message.role == "user" and message.text:
            return message.text
    return ""


def build(
    turns: list[Turn], *, started: float, now: float, run: str = "", complete: bool = True
) -> Trace:
    """Pair each request's tool results with the calls its conversation's last answer made."""
    calls: list[Call] = []
    orphans: list[tuple[int, ToolResult]] = []
    last_answer: dict[str, Turn] = {}  # conversation -> its latest answered turn
    last_request: dict[str, bytes] = {}  # conversation -> its latest request body's hash
    for turn in turns:
        step = turn.step
        turn.calls = []
        if step is None:
            continue
        if not turn.agent:  # a guard keeps its turns from one request to the next
            turn.agent = agent_of(step)
            turn.conversation = _digest(turn.agent, _first_user_text(step))
            turn.fresh = not any(m.role == "assistant" for m in step.messages)
        retry = last_request.get(turn.conversation) == turn.request_hash
        last_request[turn.conversation] = turn.request_hash
        previous = last_answer.get(turn.conversation)
        if not retry:
            for result in step.tool_results:
                match = _match(previous.calls if previous else [], result)
                if match is None:
                    orphans.append((turn.seq, result))
                else:
                    match.results.append((turn.seq, result))
        if turn.answered:
            declared = {t.name: t for t in step.tools}
            for call in step.tool_calls:
                made = Call(len(calls), turn.seq, turn.conversation, call, declared.get(call.name))
                calls.append(made)
                turn.calls.append(made)
            last_answer[turn.conversation] = turn
    return Trace(turns, calls, orphans, started, now, run, complete)


def _match(candidates: list[Call], result: ToolResult) -> Call | None:
    """The call a result answers: by id, else by tool name (Gemini's results carry only the
    name), the first such call not answered yet."""
    for call in candidates:
        if call.call.id and call.call.id == result.call_id:
            return call
    named = [c for c in candidates if c.name == result.call_id]
    for call in named:
        if not call.results:
            return call
    return named[0] if named else None
