"""The typer app, its exit codes and the options the command groups share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="seamtape",
    help="A time-travel debugger for LLM agents: record, replay bit-exact, fork and blame.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_DIVERGED = 1
EXIT_USAGE = 2

TapeArg = Annotated[Path, typer.Argument(help="The tape file.", show_default=False)]
AgentOpt = Annotated[
    str, typer.Option("--agent", help="The agent, as package.module:function.", show_default=False)
]
RunOpt = Annotated[
    str | None, typer.Option("--run", help="Run id (or prefix, or name); default the latest run.")
]


def new_console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)
