"""Commands that blame: blame, and the validate and bench experiments that score it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import EXIT_DIVERGED, AgentOpt, RunOpt, TapeArg, app, new_console


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

    from seamtape.engine.blame import blame as run_blame
    from seamtape.faces.terminal import BlameBar, print_blame

    console = new_console(stderr=as_json)  # with --json, stdout carries the JSON alone
    bar = BlameBar(console)
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
            progress=bar.update,
        )
    if as_json:
        print(report.to_json())
        return
    print_blame(console, report)


def _blame_simulator(stack: Any, tape: Path, run: str | None, policy: str | None) -> str:
    """Start the embedded simulator for blame's live tails; its URL in the run's own shape."""
    from urllib.parse import urlsplit

    from seamtape import sim
    from seamtape.engine.blame import parent_run
    from seamtape.tape import Tape

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
    from seamtape.proof import validate as v

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
    _experiment("validate", config, summary, out, check)


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
    from seamtape.proof import bench as b

    config = b.BenchConfig(
        seed=seed, max_trials=max_trials, temperature=temperature, workers=workers
    )
    _experiment(
        "bench",
        config,
        lambda doc: (
            f"{doc['expected']} of {doc['readings']} readings as expected; {doc['seconds']} s"
        ),
        out,
        check,
    )


def _experiment(name: str, config: Any, summary: Any, out: Path, check: bool) -> None:
    from seamtape.proof.experiment import run_experiment

    console = new_console()
    outcome = run_experiment(
        name,
        config,
        out=out,
        check=check,
        progress=lambda line: console.print(line, markup=False),
    )
    console.print(summary(outcome.doc))
    if outcome.checked_against is None:
        console.print("wrote " + " and ".join(str(p) for p in outcome.written))
        return
    for problem in outcome.problems:
        console.print(f"[red]worse:[/red] {problem}")
    if not outcome.ok:
        raise typer.Exit(EXIT_DIVERGED)
    console.print("[green]no result fell below the committed report[/green]")
