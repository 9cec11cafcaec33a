"""How long the command line takes to start: `seamtape --help` in a fresh process.

    python scripts/bench_startup.py [--rounds N]

Each round starts, in turn, a bare interpreter (`python -c pass`), `python -c "import
seamtape"`, and `seamtape --help`, so the three share the machine's state; the report gives
medians over the rounds and the cost above a bare interpreter. Writes
experiments/startup.json and the `startup` section of experiments/perf.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments"
TARGET_S = 0.5  # "well under half a second"

SIDES = {
    "bare interpreter": [sys.executable, "-c", "pass"],
    "import seamtape": [sys.executable, "-c", "import seamtape"],
    "seamtape --help": [shutil.which("seamtape") or "seamtape", "--help"],
}


def _once(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    for argv in SIDES.values():  # warm the file cache once, uncounted
        _once(argv)
    times: dict[str, list[float]] = {name: [] for name in SIDES}
    for _ in range(args.rounds):
        for name, argv in SIDES.items():
            times[name].append(_once(argv))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    bare = medians["bare interpreter"]
    doc = {
        "meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "date": date.today().isoformat(),
            "rounds": args.rounds,
        },
        "median_s": {k: round(v, 4) for k, v in medians.items()},
        "above_bare_s": {k: round(v - bare, 4) for k, v in medians.items()},
        "target_s": TARGET_S,
        "met": medians["seamtape --help"] < TARGET_S,
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "startup.json").write_text(json.dumps(doc, indent=2) + "\n")
    _write_section(OUT / "perf.md", _markdown(doc))
    print(json.dumps(doc["median_s"]))


def _markdown(doc: dict) -> str:
    m, meta = doc["median_s"], doc["meta"]
    lines = [
        "## Command-line start-up",
        "",
        f"Measured by `python scripts/bench_startup.py` on {meta['machine']}, Python "
        f"{meta['python']}, {meta['date']}: {meta['rounds']} interleaved rounds of fresh "
        "processes; medians.",
        "",
        "| command | median s | above a bare interpreter s | target | met |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name, value in m.items():
        target = f"< {doc['target_s']} s" if name == "seamtape --help" else "—"
        met = ("yes" if doc["met"] else "no") if name == "seamtape --help" else "—"
        lines.append(
            f"| `{name}` | {value:.3f} | {doc['above_bare_s'][name]:.3f} | {target} | {met} |"
        )
    return "\n".join(lines)


def _write_section(path: Path, body: str) -> None:
    begin, end = "<!-- startup:begin -->", "<!-- startup:end -->"
    text = path.read_text() if path.exists() else "# Seam performance\n"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        text = head + block + rest.partition(end)[2]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
