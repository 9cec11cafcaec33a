"""Record the replay corpus in fixtures/ against the simulator, offline.

    python scripts/make_fixtures.py

Each tape holds one run of one agent from fixtures/agents.py; fixtures/replay.toml, written
here too, lists them for the CI gate (`seamtape check-replay fixtures`). Run it after
changing an agent on purpose; the gate fails until you do. The tapes are re-packed with
1 KiB pages so that they stay small in git.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

# tape, run name, agent in fixtures/agents.py, simulator policy options, oracle
CORPUS = [
    ("trip.tape", "trip-planner", "trip_agent", {"seed": 7, "tools_plan": ["get_weather", "find_hotel"]}, "answered"),
    ("triage.tape", "order-triage", "triage_agent", {"seed": 3, "tools_plan": ["lookup_order"]}, "answered"),
    ("digest.tape", "release-digest", "digest_agent", {"seed": 5}, None),
    ("gemini.tape", "rivers", "gemini_agent", {"seed": 2}, "answered"),
]  # fmt: skip

HEADER = """\
# The replay corpus: `seamtape check-replay fixtures` replays each tape bit-exact in CI.
# Written by scripts/make_fixtures.py, which also records the tapes; edit that, not this.
pythonpath = [".."]
"""


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from fixtures import agents

    import seamtape
    from seamtape import sim
    from seamtape._agents import run_agent

    entries = []
    with tempfile.TemporaryDirectory() as scratch:
        for tape, run, agent, policy, oracle in CORPUS:
            path = Path(scratch) / tape
            with sim.serve(sim.StochasticPolicy(**policy)) as server:
                with seamtape.record(path, name=run, upstream=server.base_url) as session:
                    run_agent(session, getattr(agents, agent))
            _pack(path)
            shutil.move(path, FIXTURES / tape)
            print(f"{tape}: run {run!r}, {(FIXTURES / tape).stat().st_size} bytes")
            entry = (
                f'[[replay]]\ntape = "{tape}"\nrun = "{run}"\nagent = "fixtures.agents:{agent}"\n'
            )
            if oracle:
                entry += f'oracle = "fixtures.agents:{oracle}"\n'
            entries.append(entry)
    (FIXTURES / "replay.toml").write_text(HEADER + "".join(f"\n{e}" for e in entries))
    report = seamtape.check_replay(FIXTURES)
    for check in report.checks:
        print(f"  replay {check.label}: {check.verdict} {check.detail}")
    return 0 if report.ok else 1


def _pack(path: Path) -> None:
    """Rewrite the tape with 1 KiB pages: a small tape is mostly empty 4 KiB pages."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA page_size=1024")
        db.execute("VACUUM")
        db.execute("PRAGMA journal_mode=WAL")


if __name__ == "__main__":
    sys.exit(main())
