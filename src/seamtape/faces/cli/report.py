"""Commands that show a tape in a browser: report (one HTML file) and serve (the live UI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import RunOpt, TapeArg, app, new_console


@app.command()
def report(
    tape: TapeArg,
    out: Annotated[
        Path, typer.Option("-o", "--out", help="The HTML file to write.", show_default=False)
    ],
    run: RunOpt = None,
    blame: Annotated[
        Path | None,
        typer.Option("--blame", help="A blame result to draw (`seamtape blame --json` output)."),
    ] = None,
    lint: Annotated[
        Path | None,
        typer.Option(
            "--lint", help="Lint findings to mark on their steps: [{rule, severity, steps, message}]."
        ),
    ] = None,
    diff: Annotated[
        str | None,
        typer.Option("--diff", help="Another run to diff the shown run against (id or name)."),
    ] = None,
    diff_tape: Annotated[
        Path | None,
        typer.Option("--diff-tape", help="The tape --diff's run is in (default: TAPE)."),
    ] = None,
) -> None:
    """Write one self-contained HTML file: the run's steps, forks, blame, lint and diffs."""
    from seamtape.faces.report import (
        DiffSpec,
        load_blame,
        load_lint,
        render_report,
        write_report,
    )

    tapes = [tape] + ([diff_tape] if diff_tape is not None and diff_tape != tape else [])
    blame_doc = load_blame(blame) if blame is not None else None
    findings = load_lint(lint) if lint is not None else None
    diffs = []
    if diff is not None or diff_tape is not None:
        from seamtape.tape import Tape

        with Tape(tape) as t:
            shown = t.run(run or (blame_doc["run_id"] if blame_doc else None)).id
        other_path = diff_tape or tape
        with Tape(other_path) as t:
            other = t.run(diff).id
        diffs.append(DiffSpec(str(tape), shown, str(other_path), other))
    page = render_report(
        [str(t) for t in tapes], run=run, blame=blame_doc, lint=findings, diffs=diffs
    )
    written = write_report(out, page)
    new_console().print(f"wrote {written} ({len(page.encode()) / 1024:.0f} KiB)", markup=False)
