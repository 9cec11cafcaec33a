"""`seamtape demo`: record a small tool-using agent against the simulator, then replay it.

Everything runs offline: the simulator listens on 127.0.0.1, and the replay runs with it
stopped, so the agent gets its answers from the tape alone.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from seamtape._errors import DivergenceError
from seamtape._session import Session, record, replay

__all__ = ["QUESTION", "TOOLS", "run_demo", "trip_agent"]

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
    {
        "name": "find_hotel",
        "description": "A hotel in a city under a nightly budget in euros.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "budget": {"type": "integer"}},
            "required": ["city", "budget"],
        },
    },
]


def run_tool(name: str, args: dict[str, Any], nondet: Any) -> str:
    """The agent's tools: deterministic, except what they read through ``nondet``."""
    city = str(args.get("city", "Lisbon"))
    if name == "get_weather":
        return f"{city}: 21°C and sunny"
    if name == "find_hotel":
        return f"Hotel Miradouro in {city}, €{int(args.get('budget', 120)) - 15}/night, ref {nondet.token_hex(4)}"
    return f"unknown tool {name}"


QUESTION = "Plan a weekend in Lisbon: check the weather and find a hotel under 150 euros."


def trip_agent(session: Session, question: str = QUESTION) -> dict[str, Any]:
    """A small tool-using agent on the official anthropic SDK, calling ``session.upstream``."""
    import anthropic

    client = anthropic.Anthropic(
        api_key="sk-demo-not-a-real-key",
        base_url=session.upstream,
        http_client=session.httpx2_client(),
    )
    started = session.nondet.now()
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    calls: list[str] = []
    for _ in range(8):
        reply = client.messages.create(
            model="sim-claude",
            max_tokens=512,
            tools=TOOLS,  # type: ignore[arg-type]  # plain dicts, as the SDK's docs write them
            messages=messages,  # type: ignore[arg-type]
        )
        messages.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
        uses = [b for b in reply.content if b.type == "tool_use"]
        if not uses:
            text = "".join(b.text for b in reply.content if b.type == "text")
            return {"answer": text, "tools": calls, "started": started.isoformat()}
        results = []
        for use in uses:
            calls.append(use.name)
            output = run_tool(use.name, dict(use.input), session.nondet)
            results.append({"type": "tool_result", "tool_use_id": use.id, "content": output})
        messages.append({"role": "user", "content": results})
    return {"answer": None, "tools": calls, "started": started.isoformat()}


def run_demo(workdir: Path | None, *, console: Any) -> Path:
    """Record → replay → a changed agent diverges. Returns the tape's path."""
    from seamtape import sim
    from seamtape.faces.terminal import show_tape

    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="seamtape-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    tape = folder / "demo.tape"

    console.rule("1. record: the agent runs against the simulator on 127.0.0.1")
    policy = sim.StochasticPolicy(seed=7, tools_plan=["get_weather", "find_hotel"])
    with sim.serve(policy) as server:
        with record(
            tape, name="trip-planner", upstream=server.anthropic_base_url, sim_policy=policy.spec
        ) as rec:
            rec.result = trip_agent(rec)
    console.print(f"agent answered: {rec.result['answer']!r}")
    console.print(f"tools called:   {', '.join(rec.result['tools'])}")
    show_tape(tape, run=rec.run_id, console=console)

    console.rule("2. replay: the simulator is stopped; every answer comes from the tape")
    with replay(tape) as rep:
        rep.result = trip_agent(rep)
    same = rep.digest == rec.digest and rep.result == rec.result
    console.print(
        f"replayed {rep.stats['served']} exchanges, 0 network calls, $0: "
        + ("[green]bit-exact[/green]" if same else "[red]differs[/red]")
        + f" (digest {rep.digest[:16]})"
    )

    console.rule("3. fork: what if step 2 had answered differently?")
    from seamtape.engine.fork import fork

    # No upstream given: the fork restarts the simulator with the policy the run recorded.
    branch = fork(
        tape,
        rec.run_id,
        step=2,
        agent=trip_agent,
        edit={"text": "No hotel fits that budget; try another weekend.", "tool_calls": []},
    )
    console.print(
        f"run {branch.run_id}: step 1 served from the tape for $0, step 2 substituted, "
        f"{branch.live} live after it (to {branch.live_to}); the agent now answers "
        f"{branch.result['answer']!r} having called {branch.result['tools'] or 'no more tools'}",
        markup=False,
    )

    console.rule("4. a changed agent: replay fails loudly at the first divergence")
    console.print(
        f"replaying run {rec.run_id}, the recording (the tape's default; forks never are)"
    )
    try:
        with replay(tape) as changed:
            trip_agent(changed, QUESTION.replace("150", "90"))
    except DivergenceError as exc:
        console.print(str(exc), markup=False, highlight=False)
    report = _blame_and_report(folder, tape, rec.run_id, console)
    console.print(f"\ntape:   {tape}")
    console.print(f"report: {report}  (open it in a browser: steps, forks, blame, diff)")
    console.print(f"try:    seamtape show {tape}")
    if not same:
        raise DivergenceError("the demo's replay was not bit-exact", run=rec.run_id)
    return tape


ORACLE = "$.answer ~= Miradouro"  # the run succeeds when the answer names the hotel


def _blame_and_report(folder: Path, tape: Path, run_id: str, console: Any) -> Path:
    """Blame the recorded run, then write a report with the blame panel into ``folder``."""
    from seamtape import sim
    from seamtape.engine.blame import blame
    from seamtape.faces.report import render_report, write_report

    console.rule("5. blame: which step decided the outcome? then a report to look at")
    with sim.serve(sim.StochasticPolicy(seed=7, temperature=1.0)) as server:
        result = blame(
            tape,
            run_id,
            agent=trip_agent,
            oracle=ORACLE,
            upstream=server.anthropic_base_url,
            perturb="drop_tool_call",
            max_trials=10,
            workers=1,
        )
    for step in result.steps:
        console.print(
            f"step {step.step}: {step.verdict} ({step.flips} of {step.trials} forks flipped "
            f"the outcome{'; ' + step.note if step.note else ''})",
            markup=False,
        )
    (folder / "blame.json").write_text(result.to_json() + "\n", encoding="utf-8")
    page = render_report([tape], run=run_id, blame=result.to_dict())
    return write_report(folder / "report.html", page)
