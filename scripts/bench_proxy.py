"""Benchmark the localhost proxy: the time it adds to a request, recording and replaying.

Method: one keep-alive httpx client sends the same Anthropic Messages request (JSON, and a
streamed one) in batches, to three places interleaved in rounds within one process: the
simulator directly, the proxy recording against that simulator, and the proxy replaying a
recording of the same requests (no upstream). Each batch's mean per-request time is one
sample; we report the median per side and the ratios of medians. The simulator runs in the
same process, so "direct" is the floor a local upstream costs. Writes experiments/proxy.json
and experiments/proxy.md (or where --out says).

    python scripts/bench_proxy.py            # about a minute on two cores
    python scripts/bench_proxy.py --quick    # fewer rounds, for a smoke check
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from seamtape import sim
from seamtape.engine.proxy import serve_proxy

ROOT = Path(__file__).resolve().parent.parent


def body(stream: bool) -> bytes:
    doc: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
    }
    if stream:
        doc["stream"] = True
    return json.dumps(doc).encode()


def batch(client: httpx.Client, url: str, payload: bytes, size: int) -> float:
    """Mean seconds per request over ``size`` requests, each body read to its end."""
    started = time.perf_counter()
    for _ in range(size):
        response = client.post(url, content=payload, headers={"content-type": "application/json"})
        response.read()
        assert response.status_code == 200, response.text[:200]
    return (time.perf_counter() - started) / size


def run(rounds: int, size: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind, stream in (("json", False), ("stream", True)):
            payload = body(stream)
            tape = Path(folder) / f"{kind}.tape"
            samples: dict[str, list[float]] = {"direct": [], "record": [], "replay": []}
            with sim.serve(sim.StochasticPolicy(seed=1)) as upstream, httpx.Client() as client:
                # The recording the replay side serves: as many requests as it will be sent.
                with serve_proxy(tape, "record", upstreams=[upstream.base_url]) as proxy:
                    batch(client, proxy.base_url + "/v1/messages", payload, rounds * size + 1)
                replaying = serve_proxy(tape, "replay", partial=True)
                recording = serve_proxy(
                    Path(folder) / f"{kind}-bench.tape", "record", upstreams=[upstream.base_url]
                )
                targets = {
                    "direct": upstream.base_url,
                    "record": recording.base_url,
                    "replay": replaying.base_url,
                }
                try:
                    for base in targets.values():  # warm-up: connections, caches, imports
                        batch(client, base + "/v1/messages", payload, 1)
                    for _ in range(rounds):
                        for side, base in targets.items():
                            samples[side].append(
                                batch(client, base + "/v1/messages", payload, size)
                            )
                finally:
                    recording.stop()
                    replaying.stop()
            medians = {side: statistics.median(values) for side, values in samples.items()}
            results[kind] = {
                "median_ms": {side: round(value * 1000, 3) for side, value in medians.items()},
                "record_over_direct": round(medians["record"] / medians["direct"], 2),
                "replay_over_direct": round(medians["replay"] / medians["direct"], 2),
                "rounds": rounds,
                "batch": size,
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke check")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments", help="report folder")
    args = parser.parse_args()
    rounds, size = (5, 10) if args.quick else (21, 20)
    results = run(rounds, size)
    meta = {"python": sys.version.split()[0], "machine": platform.machine(), "quick": args.quick}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "proxy.json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=2) + "\n"
    )
    lines = [
        "# Proxy overhead",
        "",
        "`python scripts/bench_proxy.py`: the same request to the simulator directly, through",
        "the proxy recording against it, and through the proxy replaying; interleaved rounds,",
        "median of per-batch mean time per request.",
        "",
        "| body | direct ms | record ms | replay ms | record / direct | replay / direct |",
        "|---|---|---|---|---|---|",
    ]
    for kind, r in results.items():
        m = r["median_ms"]
        lines.append(
            f"| {kind} | {m['direct']} | {m['record']} | {m['replay']} "
            f"| {r['record_over_direct']} | {r['replay_over_direct']} |"
        )
    lines += ["", f"{rounds} rounds of {size} requests per side; Python {meta['python']}.", ""]
    (args.out / "proxy.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
