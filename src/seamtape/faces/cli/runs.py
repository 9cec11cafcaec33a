"""Commands that make and read runs: record, replay, verify, show, fork, demo, sim."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import EXIT_DIVERGED, AgentOpt, RunOpt, TapeArg, app, new_console

EXIT_TRIPPED = 3  # a guard stopped the recording


@app.command()
def show(tape: TapeArg, run: RunOpt = None) -> None:
    """List a tape's runs and their steps: model, stop reason, tool calls, tokens, cost."""
    from seamtape.faces.terminal import show_tape

    show_tape(tape, run=run, console=new_console())


@app.command()
def record(
    tape: TapeArg,
    agent: AgentOpt,
    name: Annotated[str | None, typer.Option(help="A name for the run.")] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            help="Base URL the agent calls, as session.upstream (default: the simulator)."
        ),
    ] = None,
    sim_policy: Annotated[
        str | None,
        typer.Option("--sim-policy", help="The simulator's policy when no --upstream is given."),
    ] = None,
    guard: Annotated[
        list[str] | None,
        typer.Option(
            "--guard",
            help="Guard the run with a lint rule setting, RULE.PARAM=VALUE (e.g. "
            "budget-cost.max_usd=0.05), or a lint configuration file; repeatable. A critical "
            "finding stops the run before its request is sent (exit 3).",
        ),
    ] = None,
    on_trip: Annotated[
        list[str] | None,
        typer.Option(
            "--on-trip", help="What a trip does: print, log:PATH or webhook:URL; repeatable."
        ),
    ] = None,
) -> None:
    """Run an agent and record every model call it makes into TAPE."""
    import contextlib

    from seamtape._agents import load_agent, record_agent
    from seamtape._errors import GuardTripped

    fn = load_agent(agent)
    guards = None
    if guard:
        from seamtape.lenses.lint import guards_from_specs

        guards = guards_from_specs(guard, actions=on_trip or ["print"])
    with contextlib.ExitStack() as stack:
        if upstream is None:
            from seamtape import sim

            try:
                policy = sim.policy_from_spec(sim_policy)
            except (ValueError, OSError, KeyError) as exc:
                raise typer.BadParameter(
                    f"{sim_policy!r}: {exc}", param_hint="--sim-policy"
                ) from None
            upstream = stack.enter_context(sim.serve(policy)).base_url
        try:
            report = record_agent(tape, fn, name=name, upstream=upstream, guards=guards)
        except GuardTripped as trip:
            new_console(stderr=True).print(str(trip), markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_TRIPPED) from None
    new_console().print(
        f"recorded run {report.run_id} against {upstream}: {report.live} exchanges, "
        f"digest {report.digest[:16]}"
    )


@app.command()
def replay(
    tape: TapeArg,
    agent: AgentOpt,
    run: RunOpt = None,
    partial: Annotated[bool, typer.Option(help="Allow the agent to stop early.")] = False,
) -> None:
    """Replay a recorded run of an agent, with no network; exit 1 at the first divergence."""
    from seamtape._agents import load_agent, replay_agent

    report = replay_agent(tape, load_agent(agent), run=run, partial=partial)
    verdict = "bit-exact" if report.bit_exact else "digest differs from the recording"
    new_console().print(
        f"replayed run {report.run_id}: {report.served} exchanges served from the tape, "
        f"digest {report.digest[:16]} ({verdict})"
    )
    if not report.bit_exact:
        raise typer.Exit(EXIT_DIVERGED)


@app.command()
def verify(tape: TapeArg) -> None:
    """Check a tape's integrity: every blob against its hash, every run against its digest."""
    from seamtape.tape import verify as verify_tape

    report = verify_tape(tape)
    console = new_console()
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

    from seamtape._agents import load_agent
    from seamtape.engine.fork import fork as fork_run

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
    new_console().print(
        f"forked run {result.parent} at step {result.step} → run {result.run_id}: "
        f"{result.served} exchanges served free, {result.live} live (${result.cost_usd:.6f})"
    )
    new_console().print_json(data=result.result)


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Where to write the demo tape (default: a temp dir).")
    ] = None,
) -> None:
    """Record a small tool-using agent against the local simulator, then replay it offline."""
    from seamtape.faces._demo import run_demo

    run_demo(workdir, console=new_console())


@app.command()
def sim(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")
    ] = 0,
    policy: Annotated[
        str | None,
        typer.Option(help="'stochastic[:seed=N,...]' (the default) or 'scripted:FILE.json'."),
    ] = None,
) -> None:
    """Serve the provider simulator on 127.0.0.1 until Ctrl-C: every wire format, offline."""
    from seamtape._errors import SeamtapeError
    from seamtape.sim import main as serve_sim
    from seamtape.sim import policy_from_spec

    try:
        policy_from_spec(policy)  # a bad spec is a usage error, before anything binds
    except (ValueError, OSError, KeyError) as exc:
        raise typer.BadParameter(f"{policy!r}: {exc}", param_hint="--policy") from None
    try:
        serve_sim(port, policy)
    except OSError as exc:
        raise SeamtapeError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from None
