"""Commands that make and read runs: record, replay, verify, show, fork, demo, sim."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import (
    EXIT_DIVERGED,
    AgentOpt,
    JsonOpt,
    PythonPathOpt,
    RunOpt,
    TapeArg,
    app,
    load,
    new_console,
    print_json,
    substitution,
)

EXIT_TRIPPED = 3  # a guard stopped the recording


@app.command()
def show(
    tape: TapeArg,
    run: RunOpt = None,
    step: Annotated[
        int | None,
        typer.Option("--step", min=1, help="Print one step's decoded request and answer."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List a tape's runs (forks under their parent) and their steps: model, stop reason,
    tool calls, tokens, cost."""
    if step is not None:
        from seamtape.lenses.summary import step_detail

        detail = step_detail(tape, run=run, step=step)
        if as_json:
            print_json(detail)
            return
        from seamtape.faces.terminal import print_step

        print_step(new_console(), detail)
        return
    if as_json:
        from seamtape.lenses.summary import summarize

        print_json(summarize(tape, run=run))
        return
    from seamtape.faces.terminal import show_tape

    show_tape(tape, run=run, console=new_console())


SimPolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--sim-policy",
        help="The simulator's policy when no --upstream is given (see `seamtape sim --help`).",
        show_default=False,
    ),
]


GuardOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--guard",
        help="Guard the run with a lint rule setting, RULE.PARAM=VALUE (e.g. "
        "budget-cost.max_usd=0.05), or a lint configuration file; repeatable. A critical "
        "finding stops the run before its request is sent (exit 3).",
    ),
]
OnTripOpt = Annotated[
    list[str] | None,
    typer.Option("--on-trip", help="What a trip does: print, log:PATH or webhook:URL; repeatable."),
]


def _guards(guard: list[str] | None, on_trip: list[str] | None) -> Any:
    if not guard:
        return None
    from seamtape.lenses.lint import guards_from_specs

    return guards_from_specs(guard, actions=on_trip or ["print"])


def _tripped(trip: BaseException) -> typer.Exit:
    new_console(stderr=True).print(str(trip), markup=False, soft_wrap=True)
    return typer.Exit(EXIT_TRIPPED)


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
    sim_policy: SimPolicyOpt = None,
    guard: GuardOpt = None,
    on_trip: OnTripOpt = None,
    pythonpath: PythonPathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run an agent and record every model call it makes into TAPE."""
    import contextlib

    from seamtape._agents import record_agent
    from seamtape._errors import GuardTripped

    fn = load(agent, pythonpath)
    guards = _guards(guard, on_trip)
    with contextlib.ExitStack() as stack:
        spec = None
        if upstream is None:
            from seamtape import sim

            policy = _policy(sim_policy, "--sim-policy")
            spec = sim.policy_spec(policy) or sim_policy
            upstream = stack.enter_context(sim.serve(policy)).base_url
        try:
            report = record_agent(
                tape, fn, name=name, upstream=upstream, sim_policy=spec, guards=guards
            )
        except GuardTripped as trip:
            raise _tripped(trip) from None
    where = f"the simulator (policy {spec}) at {upstream}" if spec else upstream
    if as_json:
        print_json({**report.to_dict(), "tape": str(tape), "live_to": where})
        return
    new_console().print(
        f"recorded run {report.run_id} into {tape}: {report.live} exchanges, live calls to "
        f"{where}, digest {report.digest[:16]}",
        markup=False,
        soft_wrap=True,
    )


def _policy(spec: str | None, hint: str) -> Any:
    from seamtape import sim

    try:
        return sim.policy_from_spec(spec)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise typer.BadParameter(f"{spec!r}: {exc}", param_hint=hint) from None


@app.command()
def replay(
    tape: TapeArg,
    agent: AgentOpt,
    run: RunOpt = None,
    partial: Annotated[bool, typer.Option(help="Allow the agent to stop early.")] = False,
    pythonpath: PythonPathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay a recorded run of an agent, with no network; exit 1 at the first divergence."""
    from seamtape._agents import replay_agent

    report = replay_agent(tape, load(agent, pythonpath), run=run, partial=partial)
    if as_json:
        print_json({**report.to_dict(), "tape": str(tape)})
    else:
        verdict = "bit-exact" if report.bit_exact else "digest differs from the recording"
        which = "" if run else " (the latest recorded run)"
        new_console().print(
            f"replayed run {report.run_id}{which}: {report.served} exchanges served from the "
            f"tape, digest {report.digest[:16]} ({verdict})",
            markup=False,
            soft_wrap=True,
        )
    if not report.bit_exact:
        raise typer.Exit(EXIT_DIVERGED)


@app.command()
def verify(tape: TapeArg, as_json: JsonOpt = False) -> None:
    """Check a tape's integrity: every blob against its hash, every run against its digest."""
    import dataclasses

    from seamtape.tape import verify as verify_tape

    report = verify_tape(tape)
    if as_json:
        print_json({**dataclasses.asdict(report), "ok": report.ok})
        if not report.ok:
            raise typer.Exit(EXIT_DIVERGED)
        return
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
        str | None,
        typer.Option(
            help="Base URL for live requests (default: the run's own upstream; a simulator "
            "is restarted with the policy it recorded with)."
        ),
    ] = None,
    sim_policy: SimPolicyOpt = None,
    guard: GuardOpt = None,
    on_trip: OnTripOpt = None,
    pythonpath: PythonPathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-run an agent with one step answered differently; the prefix is served for $0."""
    import contextlib

    from seamtape._errors import GuardTripped
    from seamtape.engine.fork import fork as fork_run

    body, fields = substitution(response, edit)
    fn = load(agent, pythonpath)
    guards = _guards(guard, on_trip)
    with contextlib.ExitStack() as stack:
        spec = None
        if sim_policy is not None:
            if upstream is not None:
                raise typer.BadParameter("give --upstream or --sim-policy, not both")
            from seamtape import sim

            policy = _policy(sim_policy, "--sim-policy")
            spec = sim.policy_spec(policy) or sim_policy
            upstream = stack.enter_context(sim.serve(policy)).base_url
        try:
            result = fork_run(
                tape,
                run,
                step=step,
                agent=fn,
                response=body,
                edit=fields,
                resample=resample,
                upstream=upstream,
                sim_policy=spec,
                guards=guards,
            )
        except GuardTripped as trip:
            raise _tripped(trip) from None
    if as_json:
        print_json(result.to_dict())
        return
    console = new_console()
    console.print(
        f"forked run {result.parent} at step {result.step} → run {result.run_id}: "
        f"{result.served} exchanges served free, {result.live} live (${result.cost_usd:.6f}); "
        f"live calls to {result.live_to}",
        markup=False,
        soft_wrap=True,
    )
    console.print_json(data=result.result)


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
        typer.Option(
            help="'stochastic[:OPTION=VALUE,...]' (the default) or 'scripted:FILE.json'; "
            "the options are listed above."
        ),
    ] = None,
) -> None:
    """Serve the provider simulator on 127.0.0.1 until Ctrl-C: every wire format, offline.

    \b
    The stochastic policy's options, as in --policy stochastic:seed=3,tool_rate=1:
      seed=N             every answer is a hash of (seed, conversation); default 0
      temperature=T      chance a resample departs from the greedy answer; default 0
      tools_plan=a|b     call these tools in this order, then answer;
      tools_plan=N       or call N tools (chosen by hash), then answer
      tool_rate=P        without a plan: chance a later turn calls a tool; default 0.7
      max_tool_turns=N   without a plan: at most N tool-calling turns; default 3
      first_tool=BOOL    without a plan: the first turn always calls a declared tool;
                         default true (false: the first turn is drawn like the others)
    Schema types are read in any case ("OBJECT" as "object", as google-genai sends them).
    """
    from seamtape._errors import SeamtapeError
    from seamtape.sim import main as serve_sim

    _policy(policy, "--policy")  # a bad spec is a usage error, before anything binds
    try:
        serve_sim(port, policy)
    except OSError as exc:
        raise SeamtapeError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from None
