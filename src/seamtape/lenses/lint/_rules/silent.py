"""Silent failure: an error or empty tool result the run carries on past."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .._config import Config
from .._findings import Finding
from .._registry import rule
from .._trace import Trace
from ._common import (
    _failed,
    _finding,
)

_ACK = re.compile(
    r"\b(error|errors|fail|fails|failed|failure|unable|could not|couldn'?t|cannot|can'?t|"
    r"not available|unavailable|sorry|problem|issue|empty|no results?|no data|did not work|"
    r"didn'?t work|went wrong|timed? ?out)\b",
    re.IGNORECASE,
)


@rule(
    "silent-failure",
    "failures",
    "warn",
    "a tool result is an error or empty, the model's next answer carries on as if it had "
    "succeeded, and nothing later in the conversation mentions it or calls that tool again",
)
def silent_failure(trace: Trace, cfg: Config) -> Iterator[Finding]:
    by_seq = {t.seq: t for t in trace.turns}
    for call in trace.calls:
        why = _failed(call)
        carried = call.result_step
        if not why or carried is None:
            continue
        answer = by_seq.get(carried)
        if answer is None or not answer.answered:
            continue  # the next turn has not answered yet (live) or failed itself
        later = [t for t in trace.conversation_turns(call.conversation) if t.seq >= carried]
        texts = [t.step.text for t in later if t.answered and t.step is not None]
        retried = any(c.name == call.name for c in trace.calls if c.index > call.index)
        if retried or any(_ACK.search(text) for text in texts):
            continue
        yield _finding(
            cfg,
            "silent-failure",
            f"{call.name} returned an {why} result (sent at step {carried}) and the model "
            "carried on as if it had succeeded; nothing later in the run acknowledges it",
            (call.step, carried),
            call.key,
        )
