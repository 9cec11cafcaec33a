"""What a person reads about a tape: tables for the terminal.

Each exchange is read through the wire codecs as a step (provider, model, stop reason, tool
calls, tokens, cost). An exchange no codec can read is still listed, as raw bytes, with the
codec's reason below the table: a tape is never shown with holes in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from seamtape.tape import Exchange, RunInfo, Tape

if TYPE_CHECKING:
    from rich.console import Console

    from seamtape.engine.blame import BlameProgress, BlameReport

__all__ = ["BlameBar", "StepRow", "print_blame", "print_step", "show_tape", "step_rows"]

# (header, justify, folds): the url, model and tool calls fold onto more lines when the
# console is narrow; the short columns keep their width.
_COLUMNS = [
    ("step", "right", False),
    ("method", "left", False),
    ("url", "left", True),
    ("status", "right", False),
    ("provider", "left", False),
    ("model", "left", True),
    ("stop", "left", False),
    ("tool calls", "left", True),
    ("tokens\nin/out", "right", False),
    ("cost $", "right", False),
    ("bytes\nreq/resp", "right", False),
    ("ms", "right", False),
]
_FOLD_MIN = 10  # below this a folded path or model id is unreadable


@dataclass
class StepRow:
    """One exchange as ``show`` lists it; ``step`` is None when no codec could read it."""

    exchange: Exchange
    request_size: int
    response_size: int
    step: Any = None  # a wire.Step
    note: str = ""  # why the exchange is shown as raw bytes


def step_rows(tape: Tape, run_id: str) -> list[StepRow]:
    """Every exchange of a run, decoded where a codec can read it."""
    from seamtape import wire
    from seamtape._steps import decode_exchange

    exchanges = tape.exchanges(run_id)
    # One query for every body of the run, rather than one per exchange.
    bodies = tape.blobs(h for ex in exchanges for h in (ex.request_body, ex.response_body))
    rows = []
    for ex in exchanges:
        request, response = bodies[ex.request_body], bodies[ex.response_body]
        row = StepRow(ex, len(request), len(response))
        if ex.status == 0:
            row.note = f"no response: {_error_text(ex)}"
        else:
            try:
                row.step = decode_exchange(ex, request, response)
            except wire.CodecError as exc:
                row.note = str(exc)
                if ex.error:  # the stream broke on the wire; that is why it does not decode
                    row.note += f" (transport error: {_error_text(ex)})"
        rows.append(row)
    return rows


def show_tape(path: str | os.PathLike[str], *, run: str | None = None, console: Any) -> None:
    """Print each run of the tape (or only ``run``) with its steps and their totals; forks
    are listed under the run they were forked from."""
    from seamtape.lenses.summary import lineage_order

    with Tape(path) as tape:
        runs = [(tape.run(run), 0)] if run else lineage_order(tape.runs())
        if not runs:
            console.print(f"{path}: no runs")
        default = tape.run().id if runs and not run else None
        for info, depth in runs:
            _show_run(console, info, step_rows(tape, info.id), depth, info.id == default)


def _show_run(
    console: Any, info: RunInfo, rows: list[StepRow], depth: int = 0, default: bool = False
) -> None:
    from rich import box
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    created = datetime.fromtimestamp(info.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
    lineage = f", forked from {info.parent} at step {info.fork_step}" if info.parent else ""
    hosts = sorted({_host(r.exchange.url) for r in rows})
    indent = "  " * max(depth - 1, 0) + ("└ " if depth else "")
    title = (
        f"{indent}run {info.id}"
        + (f" ({info.name})" if info.name else "")
        + f" · {info.status} · {created} UTC{lineage}"
        + (" · from a trace: not replayable" if info.status == "ingested" else "")
        + (f" · {', '.join(hosts)}" if hosts else "")
        + (" · replayed by default" if default else "")
    )
    table = Table(
        title=Text(title, style="table.title"),  # Text: names and paths are not markup
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    cells = [_cells(row) for row in rows]
    keep = list(range(len(_COLUMNS)))
    if console.is_terminal:
        # A terminal gets a table that fits it: the least needed columns go first.
        for drop in _DROP_ORDER:
            if _folded_width(cells, keep) <= console.width:
                break
            keep.remove(drop)
    for i in keep:
        name, justify, folds = _COLUMNS[i]
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
            no_wrap=not folds,
            min_width=_FOLD_MIN if folds else None,
        )
    for line in cells:
        table.add_row(*(Text(line[i]) for i in keep))
    if not console.is_terminal:
        # Piped (rich then assumes 80 columns) or too narrow to fold: print whole lines, wider
        # than the console, rather than cut or drop a column; grep then finds a step on one line.
        natural = Measurement.get(console, console.options.update(width=1_000_000), table)
        table.width = max(natural.maximum, console.width)
    console.print(table, crop=False)
    # Piped, a note stays on one line for grep; on a terminal it wraps to fit.
    whole = not console.is_terminal
    for row in rows:
        if row.step is None:
            note = f"  step {row.exchange.seq}: raw bytes: {row.note}"
            console.print(note, markup=False, soft_wrap=whole)
    console.print(f"  {_totals(info, rows)}\n", markup=False, soft_wrap=whole)


# Columns a narrow terminal does without, in this order: bytes, ms, method, status, url,
# provider, cost.
_DROP_ORDER = (10, 11, 1, 3, 2, 4, 9)


def _folded_width(cells: list[list[str]], keep: list[int] | None = None) -> int:
    """The narrowest the table gets with its long columns folded and the others whole."""
    total = 0
    for i, (name, _, folds) in enumerate(_COLUMNS):
        if keep is not None and i not in keep:
            continue
        widest = max([len(part) for part in name.split("\n")] + [len(line[i]) for line in cells])
        total += min(widest, _FOLD_MIN) if folds else widest
        total += 2  # padding and separator
    return total


def _cells(row: StepRow) -> list[str]:
    ex, step = row.exchange, row.step
    status = str(ex.status) if ex.status else f"error: {(ex.error or {}).get('type')}"
    if step is None:
        decoded = ["raw", "", "", "", "", ""]
    else:
        decoded = [
            step.provider,
            step.model,
            step.stop_reason or "",
            ", ".join(call.name for call in step.tool_calls),
            f"{_tokens_in(step)}/{step.usage.output_tokens}",
            "unknown" if step.cost_usd is None else f"{step.cost_usd:.6f}",
        ]
    return [
        str(ex.seq),
        ex.method,
        _path(ex.url),
        status,
        *decoded,
        f"{row.request_size}/{row.response_size}",
        f"{ex.duration_ms:.0f}",
    ]


def _totals(info: RunInfo, rows: list[StepRow]) -> str:
    steps = [r.step for r in rows if r.step is not None]
    tokens_in = sum(_tokens_in(s) for s in steps)
    tokens_out = sum(s.usage.output_tokens for s in steps)
    priced = [s.cost_usd for s in steps if s.cost_usd is not None]
    unpriced = sorted({s.model or "no model named" for s in steps if s.cost_usd is None})
    if not unpriced:
        cost = f"${sum(priced):.6f}"
    else:
        # never $0 for what was not priced: say which models the price table lacks
        unknown = f"price unknown for {', '.join(unpriced)}"
        cost = f"${sum(priced):.6f} + {unknown}" if priced else unknown
    raw = len(rows) - len(steps)
    digest = (info.digest or "-")[:16]
    return (
        f"{info.exchanges} exchanges"
        + (f" ({raw} raw)" if raw else "")
        + f", {info.draws} draws, tokens {tokens_in} in / {tokens_out} out, cost {cost}, "
        + f"digest {digest}"
    )


def _tokens_in(step: Any) -> int:
    """Every prompt token, cached or not (the codecs count cache reads and writes apart)."""
    usage = step.usage
    return usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens


def _path(url: str) -> str:
    """The path and query, percent-decoded for reading (Bedrock quotes the ':' of model ids)."""
    parts = urlsplit(url)
    return unquote(parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def _error_text(ex: Exchange) -> str:
    error = ex.error or {}
    return f"{error.get('type', 'error')}: {error.get('message', '')}".rstrip(": ")


def print_step(console: Any, detail: dict[str, Any]) -> None:
    """One step, as ``show --step`` prints it: the decoded request, then the answer."""
    import json

    head = f"run {detail['run']} step {detail['step']}: {detail['method']} {detail['url']}"
    head += f" → {detail['status']}"
    console.print(head, markup=False, soft_wrap=True)
    if detail.get("error"):
        console.print(f"transport error: {detail['error']}", markup=False, soft_wrap=True)
    if not detail["decoded"]:
        console.print(f"raw bytes: {detail['note']}", markup=False, soft_wrap=True)
        for side in ("request_body", "response_body"):
            body = detail[side]
            text = body if isinstance(body, str) else json.dumps(body, indent=2)
            console.print(f"\n{side.replace('_', ' ')}:\n{text}", markup=False, soft_wrap=True)
        return
    request, answer = detail["request"], detail["answer"]
    lines = [f"{detail['provider']} · {detail['api']} · model {request['model']}", "", "request:"]
    if request["system"]:
        lines.append(f"  system: {request['system']}")
    if request["tools"]:
        lines.append(f"  tools offered: {', '.join(t['name'] for t in request['tools'])}")
    for message in request["messages"]:
        lines += _message_lines(message)
    lines += ["", "answer:"]
    if answer["text"]:
        lines.append(f"  text: {answer['text']}")
    for call in answer["tool_calls"]:
        lines.append(f"  tool call {call['name']}({json.dumps(call['arguments'])})")
    usage = answer["usage"]
    cost = "price unknown" if answer["cost_usd"] is None else f"${answer['cost_usd']:.6f}"
    lines.append(
        f"  stop: {answer['stop_reason'] or '-'} · tokens {usage['input_tokens']} in / "
        f"{usage['output_tokens']} out · {cost}"
    )
    console.print("\n".join(lines), markup=False, soft_wrap=True)


def _message_lines(message: dict[str, Any]) -> list[str]:
    import json

    lines = []
    if message["text"]:
        lines.append(f"  {message['role']}: {message['text']}")
    for call in message["tool_calls"]:
        lines.append(f"  {message['role']} → {call['name']}({json.dumps(call['arguments'])})")
    for result in message["tool_results"]:
        flag = " (error)" if result["is_error"] else ""
        lines.append(f"  {message['role']} ← tool result{flag}: {result['content']}")
    return lines


# -- blame ---------------------------------------------------------------------------------


class BlameBar:
    """Blame's progress on the terminal: the estimate once, then a bar of trials and spend."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = console
        self.bar = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[calls]} live calls, ${task.fields[spend]:.6f}"),
            console=console,
        )
        self.task: Any = None

    def update(self, event: BlameProgress) -> None:
        if self.task is None:
            est = event.estimate
            self.console.print(
                f"estimate: {est.steps} steps; {est.min_calls} live calls "
                f"(${est.min_cost:.6f}) at {est.min_trials} trials a step, "
                f"{est.max_calls} (${est.max_cost:.6f}) at {est.max_trials}"
            )
            if est.budget is not None and est.calls < est.max_calls:
                self.console.print(
                    f"budget: ${est.budget:.6f} pays for about {est.calls} live calls"
                )
            if est.unpriced:
                self.console.print(f"note: {est.unpriced} steps use a model with no price; $0 each")
            self.bar.start()
            self.task = self.bar.add_task("blame", total=None, calls=0, spend=0.0)
        self.bar.update(
            self.task,
            completed=event.done,
            total=event.planned or None,
            calls=event.live_calls,
            spend=event.cost_usd,
        )

    def stop(self) -> None:
        self.bar.stop()


def print_blame(console: Console, report: BlameReport) -> None:
    """The blame table: each step's flip rate, intervals, trials and verdict, then totals."""
    from rich.table import Table

    table = Table(title=f"blame: run {report.run_id}", title_justify="left")
    columns = (
        "step",
        "flip rate",
        "tail's",
        "Wilson 95%",
        "anytime 95%",
        "trials",
        "verdict",
        "note",
    )
    for name in columns:
        table.add_column(name, justify="right" if name in ("step", "trials") else "left")
    colours = {"cause": "red", "not the cause": "green", "uncertain": "yellow"}
    for s in report.steps:
        measured = s.trials > 0
        table.add_row(
            str(s.step),
            f"{s.flips}/{s.trials} = {s.flip_rate:.2f}" if measured else "-",
            f"{s.tail_flips}/{s.tail_trials}" if s.tail_trials else "-",
            f"{s.low:.2f} to {s.high:.2f}" if measured else "-",
            f"{s.cs_low:.2f} to {s.cs_high:.2f}" if measured else "-",
            str(s.trials) + (f" (+{s.skipped_identical} identical)" if s.skipped_identical else ""),
            f"[{colours.get(s.verdict, 'dim')}]{s.verdict}[/]",
            s.note,
        )
    console.print(table)
    graded = "succeeded" if report.parent_success else "failed"
    share = report.live_calls / report.uniform_calls if report.uniform_calls else 0.0
    console.print(
        f"the run {graded} by the oracle; {report.trials} trials, stopped: {report.stopped}; "
        f"{report.live_calls} live calls (${report.cost_usd:.6f}), {share:.0%} of the "
        f"{report.uniform_calls} that {report.max_trials} trials at every step would make"
    )
    if report.question:
        console.print(f"a cause answers: {report.question}", markup=False)
    top = report.top(3)
    if top.note:
        console.print(top.note, markup=False)
