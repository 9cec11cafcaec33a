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
        typer.Option(
            help="Base URL for live tails (default: the run's own upstream, or the embedded "
            "simulator with --sim-policy)."
        ),
    ] = None,
    sim_policy: Annotated[
        str | None,
        typer.Option(
            help="Answer live tails with the embedded simulator and this policy, when the run "
            "records none: 'stochastic[:k=v,...]'."
        ),
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
    estimator: Annotated[
        str,
        typer.Option(
            help="contrast: a step's flip rate less its tail's (resampling from the next step "
            "on); flip_rate: the step's flip rate alone."
        ),
    ] = "contrast",
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="Tape the trial runs go to (default: NAME.trials.tape beside the tape).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Rank a run's steps by how often perturbing them flips the oracle's verdict."""
    import contextlib

    from seamtape.engine.blame import blame as run_blame
    from seamtape.engine.blame import live_upstream
    from seamtape.faces.terminal import BlameBar, print_blame

    console = new_console(stderr=as_json)  # with --json, stdout carries the JSON alone
    bar = BlameBar(console)
    with contextlib.ExitStack() as stack:
        url, where = stack.enter_context(live_upstream(tape, run, upstream, sim_policy))
        stack.callback(bar.stop)
        report = run_blame(
            tape,
            run,
            agent=agent,
            oracle=oracle,
            upstream=url,
            perturb=perturb,
            max_trials=max_trials,
            min_trials=min(min_trials, max_trials),
            budget=budget,
            workers=workers,
            threshold=threshold,
            seed=seed,
            estimator=estimator,
            into=into,
            progress=bar.update,
        )
    err = new_console(stderr=True)
    if as_json:
        print(report.to_json())
    else:
        print_blame(console, report)
    err.print(f"{where}; trial runs written to {report.trials_tape}", markup=False)


ExperimentsOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Folder for the report (NAME.json and a section of blame.md); without it "
        "nothing is written. With --check: the folder holding the committed report.",
    ),
]
TailsOpt = Annotated[
    str,
    typer.Option(
        help="repeats: live calls sampled only on a repeated conversation; sampled: every "
        "live call sampled at the temperature; both: side by side."
    ),
]
CheckOpt = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Re-run with the committed report's settings; exit 1 if a result fell below it. "
        "Writes nothing.",
    ),
]


# Options validate and bench share.
ExperimentTrialsOpt = Annotated[
    int, typer.Option(min=2, help="Blame's attempts per step, at most.")
]
TemperatureOpt = Annotated[float, typer.Option(min=0.0, help="The model's temperature.")]
WorkersOpt = Annotated[int, typer.Option(min=1, help="Worker processes for trials.")]


@app.command()
def validate(
    fixtures: Annotated[
        int, typer.Option(min=1, help="Faulty fixtures per tail kind, cycling classes.")
    ] = 24,
    controls: Annotated[
        int, typer.Option(min=0, help="No-fault control fixtures per tail kind.")
    ] = 4,
    position_steps: Annotated[
        int, typer.Option(min=3, max=20, help="Run length of the position control.")
    ] = 5,
    max_steps: Annotated[int, typer.Option(min=3, max=20, help="Longest run drawn.")] = 20,
    seed: Annotated[int, typer.Option(help="Seeds every fixture and every shuffle.")] = 0,
    max_trials: ExperimentTrialsOpt = 10,
    temperature: TemperatureOpt = 1.0,
    workers: WorkersOpt = 2,
    tails: TailsOpt = "both",
    out: ExperimentsOpt = None,
    check: CheckOpt = False,
) -> None:
    """Score blame against injected faults with a known root cause, with three controls."""
    from seamtape.proof import validate as v

    def summary(doc: dict[str, Any]) -> str:
        lines = []
        for kind, part in doc["tails"].items():
            o, c, t, cert = part["overall"], part["cost"], part["targets"], part["certified"]
            lines.append(
                f"{kind} tails: top-1 {o['top1']['rate']:.3f} [{o['top1']['low']:.2f}, "
                f"{o['top1']['high']:.2f}], top-3 {o['top3']['rate']:.3f}; cause certified "
                f"{cert['rate']:.3f} of roots flipping >= 0.8; live calls {c['ratio']:.3f} of "
                f"uniform; controls {'behave' if t['controls_ok'] else 'DO NOT BEHAVE'}"
            )
        return "\n".join([*lines, f"{doc['seconds']} s"])

    config = v.Config(
        fixtures=fixtures,
        controls=controls,
        position_steps=position_steps,
        max_steps=max_steps,
        seed=seed,
        max_trials=max_trials,
        temperature=temperature,
        workers=workers,
        tails=_tails(tails),
    )
    _experiment("validate", config, summary, out, check)


@app.command()
def bench(
    seed: Annotated[int, typer.Option(help="Seeds the scenarios' worlds.")] = 0,
    max_trials: ExperimentTrialsOpt = 10,
    temperature: TemperatureOpt = 1.0,
    workers: WorkersOpt = 2,
    tails: TailsOpt = "both",
    out: ExperimentsOpt = None,
    check: CheckOpt = False,
) -> None:
    """Plant competing causes in one run and report how blame reads each of them."""
    from seamtape.proof import bench as b

    config = b.BenchConfig(
        seed=seed,
        max_trials=max_trials,
        temperature=temperature,
        workers=workers,
        tails=_tails(tails),
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


def _tails(value: str) -> str:
    if value not in ("repeats", "sampled", "both"):
        raise typer.BadParameter("use repeats, sampled or both", param_hint="--tails")
    return value


def _experiment(name: str, config: Any, summary: Any, out: Path | None, check: bool) -> None:
    from seamtape.proof.experiment import run_experiment

    if check and out is None:
        raise typer.BadParameter(
            "--check compares with a committed report: name its folder, e.g. --out experiments",
            param_hint="--out",
        )
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
        if outcome.written:
            console.print("wrote " + " and ".join(str(p) for p in outcome.written))
        else:
            console.print("wrote nothing (pass --out FOLDER to keep the report)")
        return
    for problem in outcome.problems:
        console.print(f"[red]worse:[/red] {problem}")
    if not outcome.ok:
        raise typer.Exit(EXIT_DIVERGED)
    console.print("[green]no result fell below the committed report[/green]")
