"""A tape as stable, readable text, for ``git diff`` on committed tapes.

    # .gitattributes                      # once per clone
    *.tape diff=seamtape                  git config diff.seamtape.textconv "seamtape textconv"

The text holds runs, then their steps: method, path, status, what the model was asked and
what it answered, and the bodies as pretty-printed JSON. What changes from one recording
of the same behaviour to the next is left out (run ids, timestamps, latency, request ids,
the port of a local upstream, the values of draws), so a re-recorded tape whose behaviour
did not change shows no diff beyond its bytes.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlsplit

from seamtape._steps import steps_of
from seamtape.lenses.diff import VOLATILE_KEYS, fingerprint, load_views
from seamtape.tape import Tape

__all__ = ["textconv"]

# Response headers worth reviewing; the rest (dates, request ids, rate limits) are volatile.
_HEADERS = ("content-type", "content-encoding", "retry-after", "retry-after-ms", "x-should-retry")
_LOCAL_PORT = re.compile(r"^(https?://(?:127\.0\.0\.1|localhost|\[::1\])):\d+")
_VOLATILE = "<volatile>"


def textconv(path: str | os.PathLike[str]) -> str:
    """The tape at ``path`` as text: the same tape always gives the same text."""
    out: list[str] = []
    with Tape(path) as tape:
        runs = tape.runs()
        ordinal = {info.id: n for n, info in enumerate(runs, start=1)}
        out.append(f"seamtape tape: {len(runs)} run(s)")
        out.append("(run ids, timestamps, latency and request ids are left out)")
        for n, info in enumerate(runs, start=1):
            views = load_views(tape, info.id)
            steps = steps_of(tape, info.id)
            exchanges = tape.exchanges(info.id)
            draws = tape.draws(info.id)
            out += ["", f"== run {n}: {info.name or '(unnamed)'} · {info.status}"]
            if info.upstream:
                out.append(f"upstream: {_unported(info.upstream)}")
            if info.parent:
                parent = ordinal.get(info.parent, "?")
                out.append(f"forked from run {parent} at step {info.fork_step}")
                if info.mutation is not None:
                    out.append(f"mutation: {json.dumps(info.mutation, sort_keys=True)}")
            out.append(
                f"steps: {len(exchanges)} · draws: {_draws(draws)} · "
                f"fingerprint {fingerprint(views)[:16]}"
            )
            if info.outcome is not None:
                out.append(f"outcome: {info.outcome}")
            if info.has_result:
                out.append("result:")
                out += _indent(json.dumps(info.result, indent=2, ensure_ascii=False))
            for ex, step in zip(exchanges, steps, strict=True):
                out.append("")
                out += _step(ex, step, info.upstream)
    return "\n".join(out) + "\n"


def _draws(draws: list[Any]) -> str:
    if not draws:
        return "none"
    return ", ".join(f"{d.kind} (before step {d.step + 1})" for d in draws)


def _step(ex: Any, step: Any, upstream: str | None) -> list[str]:
    parts = urlsplit(ex.url)
    where = parts.path + (f"?{parts.query}" if parts.query else "")
    if upstream and not ex.url.startswith(upstream.rstrip("/")):
        where = _unported(ex.url)
    status = str(ex.status) if ex.status else f"failed: {(ex.error or {}).get('type', '?')}"
    head = f"-- step {ex.seq} · {ex.method} {where} · {status}"
    lines = [head + (f" · {step.api} · {step.model}" if step is not None else "")]
    if step is not None:
        lines += _summary(step)
    lines.append("request body:")
    lines += _indent(_pretty(ex.request_bytes()))
    headers = [f"{k}: {v}" for k, v in ex.response_headers if k.lower() in _HEADERS]
    if headers:
        lines.append("response headers:")
        lines += _indent("\n".join(headers))
    if ex.error:
        lines.append(f"transport error: {ex.error.get('type', '')}: {ex.error.get('message', '')}")
    lines.append("response body:")
    lines += _indent(_pretty(ex.response_bytes()))
    return lines


def _summary(step: Any) -> list[str]:
    lines = []
    if step.system:
        lines.append(f"system: {_clip(step.system)}")
    if step.messages:
        last = step.messages[-1]
        for result in last.tool_results:
            lines.append(f"asked:  {last.role}: tool result: {_clip(result.content)}")
        if last.text or not last.tool_results:
            lines.append(f"asked:  {last.role}: {_clip(last.text)}")
    for call in step.tool_calls:
        arguments = call.raw_arguments if call.raw_arguments is not None else call.arguments
        lines.append(f"answer: tool call {call.name} {json.dumps(arguments, ensure_ascii=False)}")
    if step.text or not step.tool_calls:
        lines.append(f"answer: {_clip(step.text)}")
    usage = step.usage
    cost = "" if step.cost_usd is None else f" · ${step.cost_usd:.6f}"
    lines.append(
        f"stop:   {step.stop_reason or '-'} · tokens {usage.input_tokens} in / "
        f"{usage.output_tokens} out{cost}"
    )
    return lines


def _pretty(body: bytes) -> str:
    """JSON pretty-printed, an SSE stream event by event, anything else as text or a size."""
    if not body:
        return "(empty)"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes of binary data)"
    try:
        return json.dumps(_mask(json.loads(text)), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply: shown as text
        pass
    lines = []
    for line in text.splitlines():
        field, sep, value = line.partition(":")
        if sep and field == "data" and value.strip().startswith(("{", "[")):
            try:
                value = json.dumps(_mask(json.loads(value)), ensure_ascii=False)
            except (ValueError, RecursionError):
                value = value.strip()
            lines.append(f"data: {value}")
        else:
            lines.append(line)
    return "\n".join(lines)


def _mask(value: Any) -> Any:
    """A JSON value with the values of volatile keys replaced, so its shape stays visible."""
    if isinstance(value, dict):
        return {k: _VOLATILE if k in VOLATILE_KEYS else _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _unported(url: str) -> str:
    """A local upstream's URL without its port, which is new at every recording."""
    return _LOCAL_PORT.sub(r"\1:<port>", url)


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _indent(text: str) -> list[str]:
    return ["    " + line if line else "" for line in text.splitlines()]
