"""Commands that keep a tape small and move runs between tapes: gc, prune, merge, import,
and the JSON Lines half of ``export`` (joined with the OTel export in otel.py). Each is one
call into ``seamtape.tape``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ._app import TapeArg, app, new_console

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _seconds(text: str) -> float:
    found = _AGE.match(text)
    if found is None:
        raise typer.BadParameter(
            f"{text!r}: give a number and a unit, e.g. 90m, 12h, 30d", param_hint="--older-than"
        )
    return float(found.group(1)) * _UNIT[found.group(2)]


def _size(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.2f} MiB"


@app.command()
def gc(tape: TapeArg) -> None:
    """Drop the bodies no run references any more and give their space back."""
    from seamtape.tape import gc as gc_tape

    report = gc_tape(tape)
    new_console().print(
        f"{tape}: removed {report.blobs_removed} unreferenced blob(s); "
        f"{_size(report.bytes_before)} -> {_size(report.bytes_after)}"
    )


@app.command()
def prune(
    tape: TapeArg,
    run: Annotated[
        list[str] | None,
        typer.Option("--run", help="A run to remove (repeatable), with its forks."),
    ] = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Remove runs older than this, e.g. 30d.")
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last", min=0, help="Keep only the latest N runs (forks go with them)."
        ),
    ] = None,
) -> None:
    """Remove runs (with their forks) and the bodies only they used."""
    from seamtape.tape import prune as prune_tape

    if not run and older_than is None and keep_last is None:
        raise typer.BadParameter("say what to prune: --run, --older-than or --keep-last")
    age = None if older_than is None else _seconds(older_than)
    report = prune_tape(tape, runs=run or (), older_than=age, keep_last=keep_last)
    new_console().print(
        f"{tape}: removed {len(report.runs_removed)} run(s), {report.exchanges_removed} "
        f"exchange(s), {report.blobs_removed} blob(s); "
        f"{_size(report.bytes_before)} -> {_size(report.bytes_after)}"
    )


@app.command()
def merge(
    into: Annotated[Path, typer.Argument(help="The tape to merge into (created if missing).")],
    sources: Annotated[list[Path], typer.Argument(help="Tapes whose runs are copied in.")],
) -> None:
    """Copy the runs of other tapes into one, storing each body once."""
    from seamtape.tape import merge as merge_tapes

    report = merge_tapes(into, sources)
    new_console().print(
        f"{into}: added {len(report.runs_added)} run(s) ({len(report.runs_skipped)} already "
        f"there), {report.blobs_added} blob(s) ({report.blobs_shared} shared)"
    )


def export_jsonl(tape: Path, runs: list[str], out: Path | None) -> None:
    """``seamtape export TAPE`` without ``--otel`` (the command lives with the OTel export):
    runs as JSON Lines, JSON bodies as JSON, others as text or base64."""
    from seamtape.tape import write_export

    lines = write_export(tape, out, runs)
    if out is not None:
        new_console(stderr=True).print(f"{out}: {lines} line(s)")


@app.command("import")
def import_(
    tape: TapeArg,
    source: Annotated[Path, typer.Argument(help="A JSON Lines export ('-': standard input).")],
) -> None:
    """Add the runs of a JSON Lines export to TAPE (created if missing)."""
    import sys

    from seamtape._errors import TapeError
    from seamtape.tape import import_runs

    if str(source) == "-":
        report = import_runs(tape, sys.stdin)
    else:
        try:
            fh = source.open(encoding="utf-8")
        except OSError as exc:
            raise TapeError(f"{source}: cannot read ({exc.strerror})") from None
        with fh:
            report = import_runs(tape, fh)
    new_console().print(
        f"{tape}: imported {len(report.runs_added)} run(s), {report.exchanges} exchange(s) "
        f"({len(report.runs_skipped)} already there)"
    )
