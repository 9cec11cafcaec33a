"""What a live guard costs a recording: the same run recorded with and without guards.

    python scripts/bench_guard.py [--rounds N] [--steps 20,100]

Each round records, in turn, an unguarded and a guarded run of the same scripted agent
(Anthropic wire format, raw HTTP through the session's client, against the simulator on
127.0.0.1), so both sides share the machine's state. The guard runs every rule, with every
budget set high enough never to trip. Reports the median seconds per run and per request,
the guarded/unguarded ratio, and how long `lint` takes on the finished tape. Writes
experiments/guard.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import seamtape
from seamtape import sim
from seamtape.lenses.lint import Guards, lint

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments" / "guard.json"
TOOLS = [
    {
        "name": "get_weather",
        "description": "weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
NEVER = {
    "rules": {
        "budget-cost": {"max_usd": 1e9},
        "budget-calls": {"max": 10**9},
        "budget-tokens": {"max": 10**12},
        "budget-time": {"max_seconds": 1e9},
    }
}


def agent(session: seamtape.Session, steps: int) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather, please."}]
    with session.httpx2_client() as client:
        for _ in range(steps):
            body = {"model": "sim-claude", "max_tokens": 64, "tools": TOOLS, "messages": messages}
            reply = client.post(f"{session.upstream}/v1/messages", json=body).json()
            messages.append({"role": "assistant", "content": reply["content"]})
            uses = [b for b in reply["content"] if b["type"] == "tool_use"]
            results = [
                {"type": "tool_result", "tool_use_id": b["id"], "content": f"sunny {n}"}
                for n, b in enumerate(uses)
            ]
            messages.append({"role": "user", "content": results or "Go on."})


def one(folder: Path, steps: int, guards: Any) -> tuple[float, Path]:
    script = [[{"name": "get_weather", "arguments": {"city": f"c{i}"}}] for i in range(steps)]
    tape = folder / f"{'guarded' if guards else 'plain'}-{steps}-{time.perf_counter_ns()}.tape"
    with sim.serve(sim.ScriptedPolicy(script)) as simulator:
        started = time.perf_counter()
        with seamtape.record(tape, upstream=simulator.base_url, guards=guards) as session:
            agent(session, steps)
        return time.perf_counter() - started, tape


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", default="20,100")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for steps in [int(s) for s in args.steps.split(",")]:
            plain, guarded, linting = [], [], []
            for _ in range(args.rounds):
                plain.append(one(folder, steps, None)[0])
                seconds, tape = one(folder, steps, Guards(NEVER, actions=[]))
                guarded.append(seconds)
                started = time.perf_counter()
                assert all(f.severity != "critical" for f in lint(tape, config=NEVER).findings)
                linting.append(time.perf_counter() - started)
            p, g = statistics.median(plain), statistics.median(guarded)
            results[str(steps)] = {
                "unguarded_s": round(p, 4),
                "guarded_s": round(g, 4),
                "ratio": round(g / p, 3),
                "guard_ms_per_request": round((g - p) / steps * 1000, 3),
                "lint_s": round(statistics.median(linting), 4),
            }
            print(f"{steps} steps: {results[str(steps)]}", file=sys.stderr)
    doc = {
        "meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "date": date.today().isoformat(),
            "rounds": args.rounds,
        },
        "by_steps": results,
    }
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
