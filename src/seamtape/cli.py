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
    """List a tape's runs and their steps: model, stop reason, tool calls, tokens, cost."""
    from .report import show_tape

    show_tape(tape, run=run, console=_console())


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
) -> None:
    """Run an agent and record every model call it makes into TAPE."""
    import contextlib

    from ._agents import load_agent, record_agent

    fn = load_agent(agent)
    with contextlib.ExitStack() as stack:
        if upstream is None:
            from . import sim

            try:
                policy = sim.policy_from_spec(sim_policy)
            except (ValueError, OSError, KeyError) as exc:
                raise typer.BadParameter(
                    f"{sim_policy!r}: {exc}", param_hint="--sim-policy"
                ) from None
            upstream = stack.enter_context(sim.serve(policy)).base_url
        report = record_agent(tape, fn, name=name, upstream=upstream)
    _console().print(
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
    from ._errors import SeamtapeError
    from .sim import main as serve_sim
    from .sim import policy_from_spec

    try:
        policy_from_spec(policy)  # a bad spec is a usage error, before anything binds
    except (ValueError, OSError, KeyError) as exc:
        raise typer.BadParameter(f"{policy!r}: {exc}", param_hint="--policy") from None
    try:
        serve_sim(port, policy)
    except OSError as exc:
        raise SeamtapeError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from None


@app.command("check-replay")
def check_replay(
    directory: Annotated[
        Path, typer.Argument(help="A directory holding replay.toml, or a manifest file.")
    ] = Path("fixtures"),
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write a JUnit XML report to this file.")
    ] = None,
    block_network: Annotated[
        bool,
        typer.Option(
            "--block-network/--allow-network", help="Fail a replay that opens a real socket."
        ),
    ] = True,
) -> None:
    """Replay every tape a manifest lists; exit 0 only if each replays bit-exact (2: bad manifest)."""
    from rich.table import Table

    from .check import check_replay as run_check

    report = run_check(directory, junit=junit, block_network=block_network)
    table = Table(title=f"replay check: {report.manifest}", title_justify="left")
    for name, justify in [("tape", "left"), ("run", "left"), ("steps", "right"),
                          ("result", "left"), ("time", "right")]:  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for check in report.checks:
        result = "[green]bit-exact[/green]" if check.ok else f"[red]{check.verdict}[/red]"
        table.add_row(check.label, check.run, str(check.steps), result, f"{check.seconds:.2f}s")
    console = _console()
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Align two runs step by step and show the first divergence; exit 0 equal, 1 different."""
    import json

    from .analyze.diff import diff as diff_runs

    (tape_a, run_a), (tape_b, run_b) = _tape_and_run(a), _tape_and_run(b)
    result = diff_runs(tape_a, tape_b, run_a=run_a, run_b=run_b)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
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
    from .textconv import textconv as tape_text

    sys.stdout.write(tape_text(tape))


@app.command()
def blame(
    tape: TapeArg,
    agent: AgentOpt,
    oracle: Annotated[
        str,
        typer.Option(
            help="Grades the agent's result: pkg.mod:fn, a regex, or a test like "
            "'$.answer ~= Lisbon'.",
            show_default=False,
        ),
    ],
    run: RunOpt = None,
    budget: Annotated[float | None, typer.Option(help="Stop spending at this many USD.")] = None,
    max_trials: Annotated[int, typer.Option(min=1, help="Attempts per step, at most.")] = 10,
    min_trials: Annotated[int, typer.Option(min=1, help="Attempts per step, at least.")] = 2,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (1: in this process).")
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(help="Base URL for live tails (default: the embedded simulator)."),
    ] = None,
    sim_policy: Annotated[
        str | None,
        typer.Option(help="The simulator's policy when no --upstream: 'stochastic[:k=v,...]'."),
    ] = None,
    perturb: Annotated[
        str,
        typer.Option(
            help="resample, or a mutation: drop_tool_call, empty_text, truncate_text, "
            "swap_tool_args."
        ),
    ] = "resample",
    threshold: Annotated[
        float, typer.Option(help="Flip rate above which a step is a cause.")
    ] = 0.5,
    seed: Annotated[int, typer.Option(help="Seeds the order of the trials.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Rank a run's steps by how often perturbing them flips the oracle's verdict."""
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from .blame import BlameProgress
    from .blame import blame as run_blame

    console = _console(stderr=as_json)  # with --json, stdout carries the JSON alone
    bar = Progress(
        TextColumn("trials"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[calls]} live calls, ${task.fields[spend]:.6f}"),
        console=console,
    )
    task: list[Any] = []

    def show_progress(event: BlameProgress) -> None:
        if not task:
            est = event.estimate
            console.print(
                f"estimate: {est.steps} steps; {est.min_calls} live calls "
                f"(${est.min_cost:.6f}) at {est.min_trials} trials a step, "
                f"{est.max_calls} (${est.max_cost:.6f}) at {est.max_trials}"
            )
            if est.budget is not None and est.calls < est.max_calls:
                console.print(f"budget: ${est.budget:.6f} pays for about {est.calls} live calls")
            if est.unpriced:
                console.print(f"note: {est.unpriced} steps use a model with no price; $0 each")
            bar.start()
            task.append(bar.add_task("blame", total=None, calls=0, spend=0.0))
        bar.update(
            task[0],
            completed=event.done,
            total=event.planned or None,
            calls=event.live_calls,
            spend=event.cost_usd,
        )

    with contextlib.ExitStack() as stack:
        if upstream is None:
            upstream = _blame_simulator(stack, tape, run, sim_policy)
        stack.callback(bar.stop)
        report = run_blame(
            tape,
            run,
            agent=agent,
            oracle=oracle,
            upstream=upstream,
            perturb=perturb,
            max_trials=max_trials,
            min_trials=min(min_trials, max_trials),
            budget=budget,
            workers=workers,
            threshold=threshold,
            seed=seed,
            progress=show_progress,
        )
    if as_json:
        print(report.to_json())
        return
    table = Table(title=f"blame: run {report.run_id}", title_justify="left")
    for name in ("step", "flip rate", "Wilson 95%", "anytime 95%", "trials", "verdict", "note"):
        table.add_column(name, justify="right" if name in ("step", "trials") else "left")
    colours = {"cause": "red", "not the cause": "green", "uncertain": "yellow"}
    for s in report.steps:
        measured = s.trials > 0
        table.add_row(
            str(s.step),
            f"{s.flips}/{s.trials} = {s.flip_rate:.2f}" if measured else "-",
            f"{s.low:.2f} to {s.high:.2f}" if measured else "-",
            f"{s.cs_low:.2f} to {s.cs_high:.2f}" if measured else "-",
            str(s.trials) + (f" (+{s.skipped_identical} identical)" if s.skipped_identical else ""),
            f"[{colours.get(s.verdict, 'dim')}]{s.verdict}[/]",
            s.note,
        )
    console.print(table)
    graded = "succeeded" if report.parent_success else "failed"
    share = report.live_calls / report.uniform_calls if report.uniform_calls else 0.0
    console.print(
        f"the run {graded} by the oracle; {report.trials} trials, stopped: {report.stopped}; "
        f"{report.live_calls} live calls (${report.cost_usd:.6f}), {share:.0%} of the "
        f"{report.uniform_calls} that {report.max_trials} trials at every step would make"
    )


def _blame_simulator(stack: Any, tape: Path, run: str | None, policy: str | None) -> str:
    """Start the embedded simulator for blame's live tails; its URL in the run's own shape."""
    from urllib.parse import urlsplit

    from . import sim
    from .blame import parent_run
    from .tape import Tape

    try:
        chosen = sim.policy_from_spec(policy)
    except (ValueError, OSError, KeyError) as exc:
        raise typer.BadParameter(f"{policy!r}: {exc}", param_hint="--sim-policy") from None
    with Tape(tape) as t:
        recorded = parent_run(t, run).upstream
    server = stack.enter_context(sim.serve(chosen))
    return server.base_url + (urlsplit(recorded).path.rstrip("/") if recorded else "")


ExperimentsOpt = Annotated[Path, typer.Option("--out", help="Where the committed reports live.")]
CheckOpt = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Re-run with the committed report's settings; exit 1 if a result fell below it. "
        "Writes nothing.",
    ),
]


@app.command()
def validate(
    fixtures: Annotated[int, typer.Option(min=1, help="Faulty fixtures, cycling classes.")] = 40,
    controls: Annotated[int, typer.Option(min=0, help="No-fault control fixtures.")] = 4,
    position_steps: Annotated[
        int, typer.Option(min=3, max=20, help="Run length of the position control.")
    ] = 6,
    max_steps: Annotated[int, typer.Option(min=3, max=20, help="Longest run drawn.")] = 20,
    seed: Annotated[int, typer.Option(help="Seeds every fixture and every shuffle.")] = 0,
    max_trials: Annotated[
        int, typer.Option(min=2, help="Blame's attempts per step, at most.")
    ] = 10,
    temperature: Annotated[float, typer.Option(min=0.0, help="The model's temperature.")] = 1.0,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes for trials.")] = 2,
    out: ExperimentsOpt = Path("experiments"),
    check: CheckOpt = False,
) -> None:
    """Score blame against injected faults with a known root cause, with three controls."""
    from . import validate as v

    def summary(doc: dict[str, Any]) -> str:
        o, c, t = doc["overall"], doc["cost"], doc["targets"]
        return (
            f"top-1 {o['top1']['rate']:.3f} [{o['top1']['low']:.2f}, {o['top1']['high']:.2f}], "
            f"top-3 {o['top3']['rate']:.3f}; live calls {c['ratio']:.3f} of uniform; controls "
            f"{'behave' if t['controls_ok'] else 'DO NOT BEHAVE'}; {doc['seconds']} s"
        )

    config = v.Config(
        fixtures=fixtures,
        controls=controls,
        position_steps=position_steps,
        max_steps=max_steps,
        seed=seed,
        max_trials=max_trials,
        temperature=temperature,
        workers=workers,
    )
    _experiment("validate", config, v.run_validate, v.check, v.markdown, summary, out, check)


@app.command()
def bench(
    seed: Annotated[int, typer.Option(help="Seeds the scenarios' worlds.")] = 0,
    max_trials: Annotated[
        int, typer.Option(min=2, help="Blame's attempts per step, at most.")
    ] = 10,
    temperature: Annotated[float, typer.Option(min=0.0, help="The model's temperature.")] = 1.0,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes for trials.")] = 2,
    out: ExperimentsOpt = Path("experiments"),
    check: CheckOpt = False,
) -> None:
    """Plant competing causes in one run and report how blame reads each of them."""
    from . import bench as b

    config = b.BenchConfig(
        seed=seed, max_trials=max_trials, temperature=temperature, workers=workers
    )
    _experiment(
        "bench",
        config,
        b.run_bench,
        b.check,
        b.markdown,
        lambda doc: (
            f"{doc['expected']} of {doc['readings']} readings as expected; {doc['seconds']} s"
        ),
        out,
        check,
    )


def _experiment(
    name: str,
    config: Any,
    run: Any,
    compare: Any,
    markdown: Any,
    summary: Any,
    out: Path,
    check: bool,
) -> None:
    """Run validate or bench: write its report, or with --check re-run the committed
    settings and compare, writing nothing."""
    from . import validate as v

    console = _console()
    report = out / f"{name}.json"
    committed = _committed(report) if check else None
    if committed is not None:
        config = type(config)(**committed["config"])
        console.print(f"checking against {report}: {config.command()}")
    doc = run(config, progress=lambda line: console.print(line, markup=False))
    console.print(summary(doc))
    if committed is not None:
        _check_outcome(console, compare(doc, committed))
        return
    v.save(doc, out, markdown, name)
    console.print(f"wrote {report} and {out / 'blame.md'}")


def _committed(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read the committed report {path}: {exc}") from None


def _check_outcome(console: Any, problems: list[str]) -> None:
    for problem in problems:
        console.print(f"[red]worse:[/red] {problem}")
    if problems:
        raise typer.Exit(EXIT_DIVERGED)
    console.print("[green]no result fell below the committed report[/green]")


def main() -> None:
    """Entry point: turn the user's mistakes into one clear line and a distinct exit code."""
    from ._errors import DivergenceError, SeamtapeError

    try:
        app()
    except DivergenceError as exc:
        _console(stderr=True).print(str(exc), markup=False, soft_wrap=True)
        sys.exit(EXIT_DIVERGED)
    except SeamtapeError as exc:
        _console(stderr=True).print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
