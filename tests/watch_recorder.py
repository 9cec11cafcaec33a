"""A recording process for the watch tests: one model call per line read from stdin.

python watch_recorder.py TAPE   prints "ready" once the run exists, then "step N" after each
exchange; the scripted model searches, then calls get_weather, then answers.
"""

from __future__ import annotations

import sys

import seamtape
from lint_world import AGENT_TOOLS, SYSTEMS, TOOLS, _Chat, call, client_for
from seamtape import sim

SCRIPT = [[call("search", q="museums")], [call("get_weather", city="Lisbon")], "Done."]


def main(tape: str) -> None:
    with sim.serve(sim.ScriptedPolicy(SCRIPT)) as simulator:
        with seamtape.record(tape, name="watched", upstream=simulator.base_url) as session:
            client = client_for("anthropic", session, simulator.base_url, 0)
            chat = _Chat("anthropic", client, SYSTEMS["planner"], AGENT_TOOLS["planner"], "Plan.")
            print("ready", flush=True)
            for n in range(1, 4):
                sys.stdin.readline()
                _, calls = chat.ask()
                print(f"step {n}", flush=True)
                chat.add_results(
                    [(i, name, TOOLS[name](args)[0], False) for i, name, args in calls]
                )


if __name__ == "__main__":
    main(sys.argv[1])
