"""Commands that show a tape in a browser: report (one HTML file) and serve (the live UI)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from seamtape.faces.report.live import UpstreamFor

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
            "--lint",
            help="Lint findings to mark on their steps: [{rule, severity, steps, message}].",
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
        diffs.append(DiffSpec(str(tape), None, str(diff_tape or tape), diff))
    page = render_report(
        [str(t) for t in tapes], run=run, blame=blame_doc, lint=findings, diffs=diffs
    )
    written = write_report(out, page)
    new_console().print(f"wrote {written} ({len(page.encode()) / 1024:.0f} KiB)", markup=False)


@app.command()
def serve(
    tapes: Annotated[
        list[Path], typer.Argument(help="The tapes to show (they may not exist yet).")
    ],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1.")] = 7777,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent", help="pkg.module:function: lets the page fork a run with an edited step."
        ),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(help="Base URL for forks' live requests (default: the run's recorded one)."),
    ] = None,
    sim: Annotated[
        bool,
        typer.Option("--sim", help="Send forks' live requests to the embedded simulator."),
    ] = False,
    blame: Annotated[
        Path | None, typer.Option("--blame", help="A blame result to draw (blame --json).")
    ] = None,
    lint: Annotated[Path | None, typer.Option("--lint", help="Lint findings to mark.")] = None,
) -> None:
    """Serve the report live on 127.0.0.1, updating while runs record; fork from the page."""
    from seamtape.faces.report import load_blame, load_lint
    from seamtape.faces.report.live import LiveServer

    fn = None
    if agent is not None:
        from seamtape._agents import load_agent

        fn = load_agent(agent)
    if sim and upstream is not None:
        raise typer.BadParameter("give --upstream or --sim, not both", param_hint="--sim")
    with contextlib.ExitStack() as stack:
        chosen: str | UpstreamFor | None = _simulator_upstream(stack) if sim else upstream
        server = LiveServer(
            [str(t) for t in tapes],
            port=port,
            agent=fn,
            upstream=chosen,
            blame=load_blame(blame) if blame is not None else None,
            lint=load_lint(lint) if lint is not None else None,
        )
        stack.enter_context(server)
        console = new_console()
        console.print(f"serving {', '.join(map(str, tapes))} on 127.0.0.1 only", markup=False)
        console.print(f"open {server.url}", markup=False)
        console.print("Ctrl-C stops", markup=False)
        with contextlib.suppress(KeyboardInterrupt):
            server.wait()


def _simulator_upstream(stack: contextlib.ExitStack) -> UpstreamFor:
    """Start the embedded simulator; a fork's URL keeps the recorded upstream's path."""
    from urllib.parse import urlsplit

    from seamtape import sim
    from seamtape.tape import Tape

    server = stack.enter_context(sim.serve(sim.policy_from_spec(None)))

    def upstream_for(tape: str, run: str) -> str:
        with Tape(tape) as t:
            recorded = t.run(run).upstream
        return server.base_url + (urlsplit(recorded).path.rstrip("/") if recorded else "")

    return upstream_for
