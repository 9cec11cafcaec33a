"""Commands that judge runs: lint (exit 0/1/2 by severity, 64+ for usage and file errors)
and watch (follow a tape being recorded, optionally killing its recorder on a critical finding).
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from ._app import RunOpt, app, new_console

# sysexits(3): a lint exit code of 1 or 2 is a verdict about the run, so usage and file
# errors use codes no verdict can have.
EXIT_USAGE = 64  # a bad option or argument
EXIT_DATA = 65  # the file is not a tape, or is damaged
EXIT_NO_INPUT = 66  # no such tape
EXIT_CONFIG = 78  # the lint configuration is malformed


# click's UsageError, as this typer ships it (typer carries its own copy of click)
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _VerdictCommand(TyperCommand):
    """A command whose exit codes 1 and 2 are verdicts: click's usage errors exit 64 instead."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _UsageError as exc:  # type: ignore[misc]
            exc.exit_code = EXIT_USAGE
            raise


class Format(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A pyproject.toml (its tool.seamtape.lint table) or a seamtape.toml (its lint "
        "table); default: the first found from the current directory upward.",
    ),
]


def _fail(message: str, code: int) -> None:
    new_console(stderr=True).print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _config(path: Path | None) -> Any:
    from seamtape._errors import LintConfigError
    from seamtape.lenses.lint import discover, load

    try:
        return load(path) if path is not None else discover()
    except LintConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)


def _open_check(tape: Path) -> None:
    if not tape.exists():
        _fail(f"{tape}: no such tape", EXIT_NO_INPUT)


@app.command(cls=_VerdictCommand)
def lint(
    tape: Annotated[Path, typer.Argument(help="The tape file.", show_default=False)],
    run: RunOpt = None,
    config: ConfigOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings.")] = False,
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
) -> None:
    """Lint a run: retry storms, loops, silent failures, delegation, policy, contracts, budgets.

    Exit 0 clean (or only warnings), 1 warnings with --strict, 2 a critical finding; 64 a
    usage error, 65 not a tape or damaged, 66 no such tape, 78 a malformed configuration.
    """
    import json

    import seamtape
    from seamtape._errors import TapeError, UnknownRunError
    from seamtape.lenses.lint import lint as lint_run
    from seamtape.lenses.lint import to_sarif

    _open_check(tape)
    cfg = _config(config)
    try:
        report = lint_run(tape, run=run, config=cfg)
    except UnknownRunError as exc:
        _fail(str(exc), EXIT_USAGE)
    except TapeError as exc:
        _fail(str(exc), EXIT_DATA)
    if format is Format.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    elif format is Format.sarif:
        doc = to_sarif([report], tool_version=seamtape.__version__)
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(report.to_text())
    raise typer.Exit(report.exit_code(strict=strict))


@app.command(cls=_VerdictCommand)
def watch(
    tape: Annotated[Path, typer.Argument(help="The tape being recorded.", show_default=False)],
    run: RunOpt = None,
    config: ConfigOpt = None,
    kill_pid: Annotated[
        int | None,
        typer.Option(
            "--kill",
            metavar="PID",
            help="On a critical finding, stop this process (SIGTERM, then SIGKILL after 5 s).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object a line: status and findings.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between looks at the tape.")] = 0.1,
) -> None:
    """Follow a tape another process is recording: a live status line and findings as they
    fire, until the run ends. Exit 0, or 2 if a critical finding fired."""
    import json

    from seamtape._errors import TapeError, UnknownRunError
    from seamtape.lenses.lint import Update, Watcher, kill

    _open_check(tape)
    cfg = _config(config)
    console = new_console()
    critical = False

    def show(update: Update) -> bool:
        nonlocal critical
        for finding in update.findings:
            if as_json:
                print(json.dumps({"finding": finding.to_dict()}), flush=True)
            else:
                console.print(finding.line(), markup=False, soft_wrap=True)
            if finding.severity == "critical" and not critical:
                critical = True
                if kill_pid is not None:
                    how = kill(kill_pid)
                    message = f"stopped process {kill_pid} ({how}) on {finding.rule}"
                    if as_json:
                        print(json.dumps({"killed": kill_pid, "signal": how}), flush=True)
                    else:
                        console.print(message, markup=False)
                    return True
        if as_json:
            print(json.dumps({"status": update.status.to_dict()}), flush=True)
        elif live is None:
            console.print(update.status.line(), markup=False, soft_wrap=True)
        return False

    live = None
    if console.is_terminal and not as_json:
        # one status line, redrawn in place with a ticking elapsed time; findings print above
        from rich.live import Live
        from rich.text import Text

        class _Line:
            status: Any = None

            def __rich__(self) -> Text:
                return Text(self.status.line() if self.status else f"waiting for a run in {tape}")

        line = _Line()
        live = Live(line, console=console, refresh_per_second=4, transient=False)
        shown = show

        def show(update: Update) -> bool:
            line.status = update.status
            return shown(update)

        console = live.console
    try:
        with Watcher(tape, run=run, config=cfg) as watcher:
            if live is not None:
                with live:
                    watcher.follow(show, interval=interval)
            else:
                watcher.follow(show, interval=interval)
    except UnknownRunError as exc:
        _fail(str(exc), EXIT_USAGE)
    except TapeError as exc:
        _fail(str(exc), EXIT_DATA)
    except KeyboardInterrupt:
        pass
    raise typer.Exit(2 if critical else 0)
