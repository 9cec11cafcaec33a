"""The proxy command group: a base-URL proxy on 127.0.0.1 for clients in any language."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._app import EXIT_DIVERGED, RunOpt, app, new_console, substitution

if TYPE_CHECKING:
    from collections.abc import Callable

    from seamtape.engine.proxy import RunningProxy

proxy_app = typer.Typer(
    help="A base-URL proxy on 127.0.0.1: record, replay or fork a run for curl, Node, Go, CLIs.",
    no_args_is_help=True,
)
app.add_typer(proxy_app, name="proxy")

TapeOpt = Annotated[Path, typer.Option("--tape", help="The tape file.", show_default=False)]
PortOpt = Annotated[
    int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")
]
UpstreamsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--upstream",
        help="URL, or name=URL to serve it under /name/ (repeat: one per provider).",
        show_default=False,
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="Do not log each request.")]
IgnoreOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore-path",
        help="A JSON path (as a divergence names it) where a request may differ and still "
        "be served, e.g. $.metadata.request_time (repeat).",
        show_default=False,
    ),
]


def _serve(running: RunningProxy) -> None:
    """Print where to point clients, serve until Ctrl-C, then print what happened."""
    import contextlib
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the proxy as Ctrl-C does: the run is closed

    signal.signal(signal.SIGTERM, interrupt)
    # A shell starts a background job with SIGINT ignored; `kill -INT` should still stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    console = new_console()
    for line in running.banner():
        console.print(line, markup=False, soft_wrap=True)
    console.print("Ctrl-C to stop.")
    console.file.flush()
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    report = running.stop()
    console.print(
        f"stopped: run {report.run_id}, {report.served} exchanges served from the tape, "
        f"{report.live} live, digest {report.digest[:16]}"
        + (f"; {report.ignored} differed only at ignored paths" if report.ignored else ""),
        markup=False,
    )
    if report.divergence is not None:
        new_console(stderr=True).print(report.divergence, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_DIVERGED)


def _log(quiet: bool) -> Callable[[str], None] | None:
    if quiet:
        return None
    console = new_console(stderr=True)
    return lambda line: console.print(line, markup=False, soft_wrap=True)


@proxy_app.command("record")
def record(
    tape: TapeOpt,
    upstream: UpstreamsOpt = None,
    port: PortOpt = 0,
    name: Annotated[str | None, typer.Option(help="A name for the run.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Record every request a client sends through the proxy into a new run of TAPE."""
    from seamtape.engine.proxy import serve_proxy

    _serve(
        serve_proxy(tape, "record", upstreams=upstream or [], port=port, name=name, log=_log(quiet))
    )


@proxy_app.command("replay")
def replay(
    tape: TapeOpt,
    run: RunOpt = None,
    port: PortOpt = 0,
    partial: Annotated[
        bool, typer.Option(help="Allow the client to stop before the run's last request.")
    ] = False,
    ignore_path: IgnoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Answer a client from a recorded run with no upstream at all; exit 1 if it diverged."""
    from seamtape.engine.proxy import serve_proxy

    _serve(
        serve_proxy(
            tape,
            "replay",
            run=run,
            port=port,
            partial=partial,
            ignore=ignore_path or [],
            log=_log(quiet),
        )
    )


@proxy_app.command("fork")
def fork(
    tape: TapeOpt,
    step: Annotated[int, typer.Option("--step", help="The 1-based step to substitute.")],
    run: RunOpt = None,
    edit: Annotated[
        str | None, typer.Option(help='JSON of Step fields to change, e.g. \'{"text": "no"}\'.')
    ] = None,
    response: Annotated[
        Path | None, typer.Option(help="A file holding the raw response body to answer with.")
    ] = None,
    resample: Annotated[bool, typer.Option(help="Ask the upstream again.")] = False,
    upstream: UpstreamsOpt = None,
    port: PortOpt = 0,
    name: Annotated[str | None, typer.Option(help="A name for the fork.")] = None,
    ignore_path: IgnoreOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Serve a run's steps before --step from the tape, substitute --step, record the rest."""

    from seamtape.engine.proxy import serve_proxy

    body, fields = substitution(response, edit)
    _serve(
        serve_proxy(
            tape,
            "fork",
            upstreams=upstream or [],
            run=run,
            port=port,
            name=name,
            step=step,
            edit=fields,
            response=body,
            resample=resample,
            ignore=ignore_path or [],
            log=_log(quiet),
        )
    )
