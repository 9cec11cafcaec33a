"""Commands that compare: check-replay, diff, textconv."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ._app import EXIT_DIVERGED, JsonOpt, TapeArg, app, new_console, print_json


@app.command("check-replay")
def check_replay(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="A directory holding replay.toml, or a manifest file "
            "(default: tape_dir of [tool.seamtape] in ./pyproject.toml, else tests/tapes).",
            show_default=False,
        ),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write a JUnit XML report to this file.")
    ] = None,
    block_network: Annotated[
        bool,
        typer.Option(
            "--block-network/--allow-network", help="Fail a replay that opens a real socket."
        ),
    ] = True,
    lint: Annotated[
        bool,
        typer.Option(
            "--lint",
            help="Also lint each run: fail on a critical finding not in lint-baseline.json, "
            "or on drift of the findings' fingerprints from it.",
        ),
    ] = False,
    update_lint_baseline: Annotated[
        bool,
        typer.Option("--update-lint-baseline", help="With --lint: rewrite lint-baseline.json."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay every tape a manifest lists; exit 0 only if each replays bit-exact (2: bad manifest)."""
    from rich.table import Table

    from seamtape.engine.check import check_replay as run_check

    report = run_check(
        directory,
        junit=junit,
        block_network=block_network,
        lint=lint,
        update_lint_baseline=update_lint_baseline,
    )
    if as_json:
        print_json(report.to_dict())
        if not report.ok:
            raise typer.Exit(EXIT_DIVERGED)
        return
    table = Table(title=f"replay check: {report.manifest}", title_justify="left")
    for name, justify in [("tape", "left"), ("run", "left"), ("steps", "right"),
                          ("result", "left"), ("time", "right")]:  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for check in report.checks:
        result = "[green]bit-exact[/green]" if check.ok else f"[red]{check.verdict}[/red]"
        table.add_row(check.label, check.run, str(check.steps), result, f"{check.seconds:.2f}s")
    console = new_console()
    console.print(table)
    for check in report.failures:
        console.print(f"\n{check.label}: {check.detail}", markup=False, soft_wrap=True)
    passed = len(report.checks) - len(report.failures)
    console.print(
        f"\n{passed}/{len(report.checks)} tapes replay bit-exact in {report.seconds:.2f}s"
    )
    if not report.ok:
        raise typer.Exit(EXIT_DIVERGED)


@app.command()
def diff(
    a: Annotated[str, typer.Argument(metavar="TAPE_A[:RUN]", help="The baseline run.")],
    b: Annotated[str, typer.Argument(metavar="TAPE_B[:RUN]", help="The run to compare.")],
    as_json: JsonOpt = False,
) -> None:
    """Align two runs step by step and show the first divergence; exit 0 equal, 1 different."""
    from seamtape.lenses.diff import diff as diff_runs

    (tape_a, run_a), (tape_b, run_b) = _tape_and_run(a), _tape_and_run(b)
    result = diff_runs(tape_a, tape_b, run_a=run_a, run_b=run_b)
    if as_json:
        print_json(result.to_dict())
    else:
        sys.stdout.write(result.to_text())
    if not result.equal:
        raise typer.Exit(EXIT_DIVERGED)


def _tape_and_run(arg: str) -> tuple[str, str | None]:
    """``TAPE`` or ``TAPE:RUN``; a path that exists as given is a tape, colon and all."""
    if Path(arg).exists() or ":" not in arg:
        return arg, None
    tape, _, run = arg.rpartition(":")
    return tape, run or None


@app.command()
def textconv(tape: TapeArg) -> None:
    """Print a tape as stable text for `git diff` (.gitattributes: *.tape diff=seamtape)."""
    from seamtape.lenses.textconv import textconv as tape_text

    sys.stdout.write(tape_text(tape))
