"""The ``seamtape`` command line: each command is a thin face over a library call.

Imports happen inside the commands so that ``seamtape --help`` starts fast.
Exit codes: 0 success, 1 a divergence or failed check, 2 a usage or file error.
"""

from __future__ import annotations

import sys
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


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


@app.command()
def show(tape: TapeArg, run: RunOpt = None) -> None:
    """List a tape's runs and, for each, its exchanges."""
    from .report import show_tape

    show_tape(tape, run=run, console=_console())


@app.command()
def record(
    tape: TapeArg,
    agent: AgentOpt,
    name: Annotated[str | None, typer.Option(help="A name for the run.")] = None,
) -> None:
    """Run an agent and record every model call it makes into TAPE."""
    from ._agents import load_agent, record_agent

    report = record_agent(tape, load_agent(agent), name=name)
    _console().print(
        f"recorded run {report.run_id}: {report.live} exchanges, digest {report.digest[:16]}"
    )


@app.command()
def replay(
    tape: TapeArg,
    agent: AgentOpt,
    run: RunOpt = None,
    partial: Annotated[bool, typer.Option(help="Allow the agent to stop early.")] = False,
) -> None:
    """Replay a recorded run of an agent, with no network; exit 1 at the first divergence."""
    from ._agents import load_agent, replay_agent

    report = replay_agent(tape, load_agent(agent), run=run, partial=partial)
    verdict = "bit-exact" if report.bit_exact else "digest differs from the recording"
    _console().print(
        f"replayed run {report.run_id}: {report.served} exchanges served from the tape, "
        f"digest {report.digest[:16]} ({verdict})"
    )
    if not report.bit_exact:
        raise typer.Exit(EXIT_DIVERGED)


@app.command()
def verify(tape: TapeArg) -> None:
    """Check a tape's integrity: every blob against its hash, every run against its digest."""
    from ._verify import verify as verify_tape

    report = verify_tape(tape)
    console = _console()
    for note in report.notes:
        console.print(f"note: {note}")
    for problem in report.problems:
        console.print(f"[red]problem:[/red] {problem}")
    status = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    console.print(
        f"{tape}: {report.runs} runs, {report.exchanges} exchanges, {report.blobs} blobs: {status}"
    )
    if not report.ok:
        raise typer.Exit(EXIT_DIVERGED)


@app.command()
def fork(
    tape: TapeArg,
    step: Annotated[int, typer.Option("--step", help="The 1-based step to substitute.")],
    agent: AgentOpt,
    run: RunOpt = None,
    response: Annotated[
        Path | None, typer.Option(help="A file holding the raw response body to answer with.")
    ] = None,
    edit: Annotated[
        str | None, typer.Option(help='JSON of Step fields to change, e.g. \'{"text": "no"}\'.')
    ] = None,
    resample: Annotated[bool, typer.Option(help="Ask the upstream again.")] = False,
    upstream: Annotated[
        str | None, typer.Option(help="Base URL for live requests (default: the recorded one).")
    ] = None,
) -> None:
    """Re-run an agent with one step answered differently; the prefix is served for $0."""
    import json

    from ._agents import load_agent
    from .fork import fork as fork_run

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
    result = fork_run(
        tape,
        run,
        step=step,
        agent=load_agent(agent),
        response=body,
        edit=fields,
        resample=resample,
        upstream=upstream,
    )
    _console().print(
        f"forked run {result.parent} at step {result.step} → run {result.run_id}: "
        f"{result.served} exchanges served free, {result.live} live (${result.cost_usd:.6f})"
    )
    _console().print_json(data=result.result)


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Where to write the demo tape (default: a temp dir).")
    ] = None,
) -> None:
    """Record a small tool-using agent against the local simulator, then replay it offline."""
    from ._demo import run_demo

    run_demo(workdir, console=_console())


def main() -> None:
    """Entry point: turn the user's mistakes into one clear line and a distinct exit code."""
    from ._errors import DivergenceError, SeamtapeError

    try:
        app()
    except DivergenceError as exc:
        _console(stderr=True).print(str(exc), markup=False)
        sys.exit(EXIT_DIVERGED)
    except SeamtapeError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
