"""The typer app, its exit codes and the options the command groups share."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"seamtape {version('seamtape')}\n")
        raise typer.Exit()


app = typer.Typer(
    name="seamtape",
    help="A time-travel debugger for LLM agents: record, replay bit-exact, fork and blame.",
    epilog="Exit codes: 0 ok, 1 a divergence or failed check, 2 a usage or file error, "
    "3 the agent raised or its upstream failed.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """A time-travel debugger for LLM agents: record, replay bit-exact, fork and blame."""


EXIT_OK = 0
EXIT_DIVERGED = 1  # a divergence, or a check that failed
EXIT_USAGE = 2  # the user's mistake: a bad option, a missing or damaged file
EXIT_AGENT = 3  # the agent raised, or the upstream it calls failed

TapeArg = Annotated[Path, typer.Argument(help="The tape file.", show_default=False)]
AgentOpt = Annotated[
    str, typer.Option("--agent", help="The agent, as package.module:function.", show_default=False)
]
RunOpt = Annotated[
    str | None,
    typer.Option(
        "--run", help="Run id (or prefix, or name); default the latest recorded run (not a fork)."
    ),
]
PythonPathOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--pythonpath",
        help="A folder to import --agent from (repeatable); the current folder and its src/ "
        "are always searched.",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (shape: docs/json.md).")
]


def new_console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def print_json(data: Any) -> None:
    """JSON on stdout, floats rounded to 6 significant digits (no 0.00034700000000000003)."""
    import json

    sys.stdout.write(json.dumps(rounded(data), indent=2, ensure_ascii=False) + "\n")


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def load(agent: str, pythonpath: list[Path] | None) -> Any:
    from seamtape._agents import load_agent

    return load_agent(agent, pythonpath=pythonpath or ())


def substitution(response: Path | None, edit: str | None) -> tuple[bytes | None, Any]:
    """A fork's ``--response`` file read and its ``--edit`` JSON parsed, or a usage error."""
    import json

    body = None
    if response is not None:
        try:
            body = response.read_bytes()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {response}: {exc.strerror}") from None
    fields = None
    if edit is not None:
        try:
            fields = json.loads(edit)
        except ValueError as exc:
            raise typer.BadParameter(f"--edit is not JSON: {exc}") from None
    return body, fields
