"""Benchmark the tape's storage: growth on disk, a 100,000-exchange tape, memory, record cost.

Method (each section prints one JSON line as it finishes; medians over repeats):

- growth: a conversation agent (each request re-sends the whole conversation, ~1 KB of new
  content a step: a user turn and the model's answer) recorded for 50/100/200/400 steps.
  File bytes as the OS reports them, tape plus ``-wal``, halfway through the recording and
  after it, beside a whole-body baseline (the same run with every body stored whole), and
  the cold read of the last request (the deepest delta chain).
- scale: 1,000 runs of 100 exchanges. Open + first replayed response, list runs, and the
  per-request replay cost of one run interleaved against the same run on a one-run tape;
  peak memory (max RSS) of a process replaying a run from each.
- memory: a 50 MiB response recorded and replayed, whole and streamed in 1 MiB chunks, each
  in a fresh process; peak RSS over the same client against a bare MockTransport.
- record: durable record of 1 KB conversation requests vs a bare MockTransport, interleaved
  with what SQLite alone costs (the exchange's rows, raw, in one transaction; one small row)
  and with a prototype that appends each exchange to a journal file and writes the tape on
  a background thread (what an append-only journal would buy).

    python scripts/bench_storage.py            # writes experiments/storage.json and .md
    python scripts/bench_storage.py --quick    # fewer repeats, smaller scale, for a smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2

import seamtape
from seamtape.tape import Tape, blob_hash, tape_bytes
from seamtape.tape import _tape as tape_module

ROOT = Path(__file__).resolve().parent.parent
URL = "http://bench.local/v1/messages"
_WORDS = [
    "the",
    "agent",
    "reads",
    "a",
    "file",
    "then",
    "calls",
    "a",
    "tool",
    "and",
    "reports",
    "what",
    "it",
    "found",
    "about",
    "the",
    "order",
    "status",
    "refund",
    "policy",
    "shipping",
    "address",
    "invoice",
    "customer",
    "ticket",
    "priority",
    "because",
    "after",
    "before",
    "during",
    "which",
    "while",
    "each",
    "every",
    "some",
    "many",
    "few",
    "more",
    "less",
    "first",
    "last",
    "next",
    "step",
    "plan",
    "check",
    "verify",
    "compare",
    "update",
    "summary",
    "result",
    "error",
    "retry",
    "answer",
    "question",
    "context",
]
SYSTEM = "You are a careful assistant. Follow the house rules and cite your sources. " * 25
TOOLS = [
    {"name": f"tool_{i}", "description": "looks something up " * 8, "input_schema": {}}
    for i in range(6)
]


def prose(seed: int, words: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def answer(step: int) -> bytes:
    return json.dumps(
        {
            "id": f"msg_{step:05d}",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [{"type": "text", "text": prose(step, 60)}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 100 + step, "output_tokens": 90},
        }
    ).encode()


def _handler(request: httpx2.Request) -> httpx2.Response:
    step = len(json.loads(request.content)["messages"]) // 2 + 1
    return httpx2.Response(200, content=answer(step), headers={"content-type": "application/json"})


# -- growth -----------------------------------------------------------------------------------


def record_conversation(path: Path, steps: int, *, whole: bool = False) -> dict[str, Any]:
    """Record ``steps`` turns; sizes halfway (during recording) and after close."""
    saved = tape_module.Tape._encode
    if whole:  # the baseline: every body stored whole, as it came
        tape_module.Tape._encode = lambda self, data, digest, delta=True: (0, data, None)  # type: ignore[method-assign]
    try:
        messages: list[dict[str, Any]] = []
        new_content = previous = 0
        during: dict[str, int] = {}
        with (
            seamtape.record(path) as session,
            session.httpx2_client(transport=httpx2.MockTransport(_handler)) as client,
        ):
            for i in range(1, steps + 1):
                messages.append({"role": "user", "content": f"turn {i}: " + prose(-i, 25)})
                body = json.dumps(
                    {"model": "m", "system": SYSTEM, "tools": TOOLS, "messages": messages}
                ).encode()
                reply = client.post(URL, content=body)
                new_content += len(body) - previous + len(reply.content)
                previous = len(body)
                messages.append({"role": "assistant", "content": reply.json()["content"]})
                if i == steps // 2:
                    during = {"step": i, "new_content": new_content, "bytes": tape_bytes(path)}
        last = blob_hash(body)
    finally:
        tape_module.Tape._encode = saved  # type: ignore[method-assign]
    with Tape(path) as tape:
        start = time.perf_counter()
        assert tape.blob(last) == body
        cold_read_ms = (time.perf_counter() - start) * 1000
    return {
        "steps": steps,
        "new_content": new_content,
        "during": during,
        "during_ratio": round(during["bytes"] / during["new_content"], 2),
        "after_bytes": tape_bytes(path),
        "after_ratio": round(tape_bytes(path) / new_content, 2),
        "last_request_bytes": len(body),
        "cold_read_last_ms": round(cold_read_ms, 2),
    }


def bench_growth(tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for steps in (50, 100, 200, 400):
        tape = record_conversation(tmp / f"growth-{steps}.tape", steps)
        whole = record_conversation(tmp / f"whole-{steps}.tape", steps, whole=True)
        rows.append({**tape, "whole_body": whole})
        print(json.dumps({"growth": rows[-1]}), flush=True)
    return rows


# -- scale ------------------------------------------------------------------------------------


def scale_bodies(run: int, steps: int) -> list[tuple[bytes, bytes]]:
    messages: list[dict[str, Any]] = []
    out = []
    for i in range(1, steps + 1):
        messages = [
            *messages[-6:],
            {"role": "user", "content": f"run {run} turn {i}: " + prose(run * 1000 + i, 30)},
        ]
        request = json.dumps({"model": "m", "system": SYSTEM[:400], "messages": messages}).encode()
        out.append((request, answer(run * 1000 + i)))
    return out


def build_tape(path: Path, runs: int, steps: int, first_run: int = 0) -> list[str]:
    """``runs`` runs of ``steps`` exchanges through the tape's own write path (one
    transaction per run, to build it in seconds rather than minutes)."""
    ids = []
    headers = json.dumps([["content-type", "application/json"]])
    with Tape(path, create=True) as tape:
        for r in range(first_run, first_run + runs):
            run_id = tape.create_run(f"run-{r}")
            with tape._write() as db:
                for seq, (request, response) in enumerate(scale_bodies(r, steps), start=1):
                    ex = tape_module.Exchange(
                        run=run_id, seq=seq, batch=seq, method="POST", url=URL,
                        request_headers_json=headers, request_body=blob_hash(request),
                        status=200, response_headers_json=headers, http_version="HTTP/1.1",
                        reason="OK", response_body=blob_hash(response), started=0.0, ended=0.0,
                    )  # fmt: skip
                    tape._put_blob(db, request, ex.request_body)
                    tape._put_blob(db, response, ex.response_body)
                    tape._insert_exchange(db, ex, [])
                    tape.remember(ex.request_body, request)
            tape.finish_run(run_id, status="complete", digest=None)
            ids.append(run_id)
    return ids


def replay_run(path: Path, run: str, bodies: list[tuple[bytes, bytes]]) -> float:
    """Seconds per request for a full replay of ``run``."""
    with seamtape.replay(path, run=run) as session, session.httpx2_client() as client:
        start = time.perf_counter()
        for request, response in bodies:
            assert client.post(URL, content=request).content == response
        return (time.perf_counter() - start) / len(bodies)


def first_response_ms(path: Path, run: str | None, first: bytes) -> float:
    start = time.perf_counter()
    with seamtape.replay(path, run=run, partial=True) as session, session.httpx2_client() as c:
        c.post(URL, content=first)
        elapsed = time.perf_counter() - start
    return elapsed * 1000


PEAK_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import bench_storage as b
from pathlib import Path
path, run, r, steps = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
bodies = b.scale_bodies(r, steps)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
b.replay_run(path, run, bodies)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "after_kib": after}))
"""


def bench_scale(tmp: Path, runs: int, steps: int, repeats: int) -> dict[str, Any]:
    big, small = tmp / "big.tape", tmp / "small.tape"
    start = time.perf_counter()
    ids = build_tape(big, runs, steps)
    build_s = time.perf_counter() - start
    probe = runs // 2
    small_id = build_tape(small, 1, steps, first_run=probe)[0]
    bodies = scale_bodies(probe, steps)
    opens, latest, lists, big_req, small_req = [], [], [], [], []
    for _ in range(repeats):
        opens.append(first_response_ms(big, ids[probe], bodies[0][0]))
        latest.append(first_response_ms(big, None, scale_bodies(runs - 1, steps)[0][0]))
        start = time.perf_counter()
        with Tape(big) as tape:
            listed = tape.runs()
        lists.append((time.perf_counter() - start) * 1000)
        assert len(listed) == runs
        big_req.append(replay_run(big, ids[probe], bodies))
        small_req.append(replay_run(small, small_id, bodies))
    peaks = {}
    for name, path, run in (("big", big, ids[probe]), ("small", small, small_id)):
        out = subprocess.run(
            [sys.executable, "-c", PEAK_CHILD, str(ROOT / "scripts"), str(path), run, str(probe), str(steps)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        peaks[name] = json.loads(out)
    result = {
        "runs": runs,
        "exchanges": runs * steps,
        "tape_bytes": tape_bytes(big),
        "build_s": round(build_s, 1),
        "open_first_response_ms": round(statistics.median(opens), 2),
        "open_first_response_latest_ms": round(statistics.median(latest), 2),
        "open_target_ms": 50,
        "list_runs_ms": round(statistics.median(lists), 1),
        "list_target_ms": 1000,
        "replay_us_per_request_big": round(statistics.median(big_req) * 1e6, 1),
        "replay_us_per_request_small": round(statistics.median(small_req) * 1e6, 1),
        "replay_ratio": round(statistics.median(big_req) / statistics.median(small_req), 3),
        "peak_rss_replay_kib": {k: v["after_kib"] for k, v in peaks.items()},
        "peak_rss_replay_growth_kib": {
            k: v["after_kib"] - v["before_kib"] for k, v in peaks.items()
        },
    }
    print(json.dumps({"scale": result}), flush=True)
    return result


# -- memory -----------------------------------------------------------------------------------

MEMORY_CHILD = """
import json, os, resource, sys
import httpx2, seamtape

mode, streamed, path, size = sys.argv[1], sys.argv[2] == "1", sys.argv[3], int(sys.argv[4])
words = b"the agent reads a file then calls a tool and reports what it found ".split()
import random
rng = random.Random(7)
line = b" ".join(rng.choice(words) for _ in range(4000))
body = (line * (size // len(line) + 1))[:size]
CHUNK = 1 << 20

def handler(request):
    if streamed:
        chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
        return httpx2.Response(200, stream=_Stream(chunks))
    return httpx2.Response(200, content=body)

class _Stream(httpx2.SyncByteStream):
    def __init__(self, chunks): self.chunks = chunks
    def __iter__(self): yield from self.chunks

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

if mode == "replay":  # the tape was recorded by an earlier "record" child
    before = rss()
    with seamtape.replay(path) as s, s.httpx2_client() as c:
        got = c.post("http://bench.local/v1", content=b"{}").content
else:
    before = rss()
    if mode == "bare":
        with httpx2.Client(transport=httpx2.MockTransport(handler)) as c:
            got = c.post("http://bench.local/v1", content=b"{}").content
    else:
        with seamtape.record(path) as s, s.httpx2_client(transport=httpx2.MockTransport(handler)) as c:
            got = c.post("http://bench.local/v1", content=b"{}").content
assert got == body
print(json.dumps({"extra": rss() - before}))
"""


def bench_memory(tmp: Path, size: int) -> list[dict[str, Any]]:
    rows = []
    for streamed in (False, True):
        extra = {}
        path = tmp / f"mem-{int(streamed)}.tape"
        for mode in ("bare", "record", "replay"):
            out = subprocess.run(
                [sys.executable, "-c", MEMORY_CHILD, mode, str(int(streamed)), str(path), str(size)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            extra[mode] = json.loads(out)["extra"]
        rows.append(
            {
                "body_mib": round(size / 2**20, 1),
                "streamed": streamed,
                "bare_extra_mib": round(extra["bare"] / 2**20, 1),
                "record_extra_mib": round(extra["record"] / 2**20, 1),
                "replay_extra_mib": round(extra["replay"] / 2**20, 1),
                # Peak extra memory in body sizes: the issue's measure, and the targets'.
                "record_extra_x": round(extra["record"] / size, 2),
                "replay_extra_x": round(extra["replay"] / size, 2),
                # Beyond what the bare client itself holds, in body sizes.
                "record_over_bare_x": round((extra["record"] - extra["bare"]) / size, 2),
                "replay_over_bare_x": round((extra["replay"] - extra["bare"]) / size, 2),
                "record_target_x": 1.5,
                "replay_target_x": 1.1,
            }
        )
        print(json.dumps({"memory": rows[-1]}), flush=True)
    return rows


# -- record cost ------------------------------------------------------------------------------


def record_request(i: int) -> bytes:
    turns = [
        {"role": "user", "content": f"turn {j}: " + prose(j, 12)}
        for j in range(max(0, i - 3), i + 1)
    ]
    return json.dumps({"model": "m", "system": SYSTEM[:500], "messages": turns}).encode()


class JournalPrototype:
    """What record would cost with an append-only journal: each exchange appended to a file
    (one ``writev``, in the OS's hands before the agent continues, so a SIGKILL loses nothing
    it saw) and folded into the tape by a background thread. A measuring device for the
    report, not how seamtape records: recovery of a journal left by a killed process, and
    readers in other processes, are not built."""

    def __init__(self, tape: Tape, path: Path) -> None:
        self.fold = tape.add_exchange
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=64)
        threading.Thread(target=self._run, daemon=True).start()

    def add_exchange(self, exchange: Any, request: Any, response: Any, draws: Any) -> None:
        e = exchange
        header = json.dumps(
            [e.run, e.seq, e.batch, e.method, e.url, e.request_headers_json,
             e.request_body.hex(), e.status, e.response_headers_json, e.http_version, e.reason,
             e.response_body.hex(), e.chunks_json, e.error_json, e.started, e.ended,
             [[d.seq, d.step, d.kind, d.value] for d in draws]]
        ).encode()  # fmt: skip
        parts = [response] if isinstance(response, bytes) else list(response or [])
        lengths = struct.pack(">4sIII", b"STJ1", len(header), len(request or b""), len(parts))
        os.writev(self.fd, [lengths, header, request or b"", *parts])
        self.queue.put((exchange, request, response, draws))

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            self.fold(*item)
            self.queue.task_done()

    def drain(self) -> None:
        self.queue.join()


def bench_record(tmp: Path, rounds: int, batch: int) -> dict[str, Any]:
    response = answer(1)

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=response)

    bodies = [record_request(i) for i in range(rounds * batch)]
    bare = httpx2.Client(transport=httpx2.MockTransport(handler))
    sides = ("bare", "record", "journal", "rows", "small_row")
    means: dict[str, list[float]] = {k: [] for k in sides}
    each: dict[str, list[float]] = {k: [] for k in sides}
    drained: list[float] = []  # the journal's batches, until its fold has caught up
    with (
        seamtape.record(tmp / "record.tape") as session,
        session.httpx2_client(transport=httpx2.MockTransport(handler)) as client,
        seamtape.record(tmp / "journal.tape") as journaled,
        journaled.httpx2_client(transport=httpx2.MockTransport(handler)) as journal_client,
        Tape(tmp / "floor.tape", create=True) as floor,
    ):
        prototype = JournalPrototype(journaled._tape, tmp / "journal.bin")  # type: ignore[arg-type]
        journaled._tape.add_exchange = prototype.add_exchange  # type: ignore[method-assign, union-attr]
        floor._db.execute("CREATE TABLE IF NOT EXISTS t (a BLOB)")
        floor_run = floor.create_run("the exchange's rows alone")
        response_hash = blob_hash(response)  # one answer for every request, as record stores it
        seq = 0

        def rows(body: bytes) -> None:
            # The rows record writes for this exchange, as it writes them (two blobs, the
            # exchange) in one transaction on a tape of the same shape; no encoding, no Python
            # around it: what SQLite itself costs.
            nonlocal seq
            seq += 1
            request, answer_ = blob_hash(body), response_hash
            with floor._write() as db:
                for digest, data in ((request, body), (answer_, response)):
                    db.execute(
                        "INSERT OR IGNORE INTO blob(hash, size, codec, data) VALUES(?, ?, 0, ?)",
                        (digest, len(data), data),
                    )
                db.execute(
                    "INSERT INTO exchange(run, seq, batch, method, url, request_headers, "
                    "request_body, status, response_headers, http_version, reason, "
                    "response_body, started, ended) VALUES(?, ?, ?, 'POST', ?, '[]', ?, 200, "
                    "'[]', 'HTTP/1.1', 'OK', ?, 0, 0)",
                    (floor_run, seq, seq, URL, request, answer_),
                )

        def small_row(body: bytes) -> None:
            with floor._write() as db:
                db.execute("INSERT INTO t VALUES(?)", (body[:64],))

        send = {
            "bare": lambda body: bare.post(URL, content=body),
            "record": lambda body: client.post(URL, content=body),
            "journal": lambda body: journal_client.post(URL, content=body),
            "rows": rows,
            "small_row": small_row,
        }
        for r in range(rounds):
            part = bodies[r * batch : (r + 1) * batch]
            for side in sides:
                start = time.perf_counter()
                for body in part:
                    t0 = time.perf_counter()
                    send[side](body)
                    each[side].append(time.perf_counter() - t0)
                means[side].append((time.perf_counter() - start) / batch)
                if side == "journal":
                    prototype.drain()
                    drained.append((time.perf_counter() - start) / batch)
    bare.close()
    mean = {k: statistics.median(v) for k, v in means.items()}
    p50 = {k: statistics.median(v) for k, v in each.items()}
    b, t = mean["bare"], mean["record"]
    result = {
        "request_bytes": round(statistics.mean(len(x) for x in bodies)),
        "bare_us": round(b * 1e6, 1),
        "record_us": round(t * 1e6, 1),
        "ratio": round(t / b, 3),
        "target": 1.5,
        "rows_alone_us": round(mean["rows"] * 1e6, 1),
        "rows_share_of_overhead": round(mean["rows"] / (t - b), 3) if t > b else None,
        "small_row_us": round(mean["small_row"] * 1e6, 1),
        "journal_us": round(mean["journal"] * 1e6, 1),
        "journal_ratio": round(mean["journal"] / b, 3),
        "journal_drained_us": round(statistics.median(drained) * 1e6, 1),
        "journal_drained_ratio": round(statistics.median(drained) / b, 3),
        # Per request, the median: what a quiet disk gives, without the slow writes of a
        # shared one that the batch means above include.
        "bare_p50_us": round(p50["bare"] * 1e6, 1),
        "record_p50_us": round(p50["record"] * 1e6, 1),
        "ratio_p50": round(p50["record"] / p50["bare"], 3),
        "journal_p50_us": round(p50["journal"] * 1e6, 1),
        "journal_ratio_p50": round(p50["journal"] / p50["bare"], 3),
        "rows_alone_p50_us": round(p50["rows"] * 1e6, 1),
        "small_row_p50_us": round(p50["small_row"] * 1e6, 1),
        "record_slow_share": round(sum(x > 1e-3 for x in each["record"]) / len(each["record"]), 3),
        "rounds": rounds,
        "batch": batch,
    }
    print(json.dumps({"record": result}), flush=True)
    return result


# -- reports ----------------------------------------------------------------------------------


def write_reports(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "storage.json").write_text(json.dumps(results, indent=2) + "\n")
    meta, growth, scale, memory, record = (
        results[k] for k in ("meta", "growth", "scale", "memory", "record")
    )
    lines = [
        "# Tape storage",
        "",
        f"Measured by `python scripts/bench_storage.py{' --quick' if meta['quick'] else ''}` on "
        f"{meta['machine']}, Python {meta['python']}, SQLite {meta['sqlite']}, {meta['date']}"
        + (
            f"; the {meta['only']} section measured again by `--only {meta['only']}`, the others "
            "kept from the run before."
            if meta.get("only")
            else "."
        ),
        "",
        "## Growth on disk (tape + `-wal`, as the file system reports them)",
        "",
        "A conversation: each request re-sends the whole conversation; new content is what each "
        "step adds (the user turn, the model's answer). Target: ≤ 2× new content after the run, "
        "at 200 and 400 steps.",
        "",
        "| steps | new content | tape after | ratio | whole-body baseline | ratio | halfway, during recording | ratio | cold read of the last request |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in growth:
        w = g["whole_body"]
        lines.append(
            f"| {g['steps']} | {g['new_content']:,} B | {g['after_bytes']:,} B | "
            f"**{g['after_ratio']}×** | {w['after_bytes']:,} B | {w['after_ratio']}× | "
            f"{g['during']['bytes']:,} B at step {g['during']['step']} | {g['during_ratio']}× | "
            f"{g['cold_read_last_ms']} ms |"
        )
    lines += [
        "",
        "During recording the write-ahead log is part of the count: it is folded into the tape "
        "every 256 pages and cut back to 1 MiB, so it adds a bounded amount, not a growing one.",
        "",
        f"## A tape of {scale['exchanges']:,} exchanges in {scale['runs']:,} runs "
        f"({scale['tape_bytes'] / 2**20:.1f} MiB)",
        "",
        "| measurement | measured | target |",
        "|---|---:|---:|",
        f"| open + first replayed response (a run by id) | {scale['open_first_response_ms']} ms | < {scale['open_target_ms']} ms |",
        f"| open + first replayed response (the latest run) | {scale['open_first_response_latest_ms']} ms | < {scale['open_target_ms']} ms |",
        f"| list runs | {scale['list_runs_ms']} ms | < {scale['list_target_ms']} ms |",
        f"| replay, per request, on this tape | {scale['replay_us_per_request_big']} µs | same as a small tape |",
        f"| replay, per request, the same run on a one-run tape | {scale['replay_us_per_request_small']} µs | |",
        f"| ratio | {scale['replay_ratio']}× | ≈ 1× |",
        f"| peak RSS replaying one run: this tape / one-run tape | {scale['peak_rss_replay_kib']['big'] / 1024:.1f} / {scale['peak_rss_replay_kib']['small'] / 1024:.1f} MiB | bounded |",
        "",
        "## Memory for a large response (peak RSS, fresh process each)",
        "",
        "Peak extra memory of the process (max RSS after minus before), in MiB and in body sizes.",
        "",
        "| body | delivered | bare client | record | replay | record beyond bare | replay beyond bare |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for m in memory:
        lines.append(
            f"| {m['body_mib']} MiB | {'streamed, 1 MiB chunks' if m['streamed'] else 'whole'} | "
            f"{m['bare_extra_mib']} MiB | {m['record_extra_mib']} MiB = **{m['record_extra_x']}×** "
            f"(≤ {m['record_target_x']}×) | {m['replay_extra_mib']} MiB = **{m['replay_extra_x']}×** "
            f"(≤ {m['replay_target_x']}×) | {m['record_over_bare_x']}× | {m['replay_over_bare_x']}× |"
        )
    lines += [
        "",
        f"## Durable record, {record['request_bytes']} B conversation requests",
        "",
        "| measurement | µs per exchange |",
        "|---|---:|",
        f"| bare MockTransport | {record['bare_us']} |",
        f"| seamtape record (one committed transaction per exchange) | {record['record_us']} ({record['ratio']}×; target ≤ {record['target']}×) |",
        f"| the exchange's rows alone (two blobs and the exchange, raw, in one WAL transaction) | {record['rows_alone_us']} ({record['rows_share_of_overhead']} of record's overhead) |",
        f"| one small row in a transaction (the commit's own floor) | {record['small_row_us']} |",
        f"| prototype: a journal append, the tape written by a background thread | {record['journal_us']} ({record['journal_ratio']}×) |",
        f"| the same, until the background thread has caught up | {record['journal_drained_us']} ({record['journal_drained_ratio']}×) |",
        f"| per request, median: bare / record / journal prototype | {record['bare_p50_us']} / {record['record_p50_us']} ({record['ratio_p50']}×) / {record['journal_p50_us']} ({record['journal_ratio_p50']}×) |",
        f"| per request, median: the exchange's rows alone / one small row | {record['rows_alone_p50_us']} / {record['small_row_p50_us']} |",
        f"| record requests slower than 1 ms (slow writes of a shared disk) | {record['record_slow_share'] * 100:.1f}% |",
        "",
        EXPLANATION,
        "",
    ]
    (out / "storage.md").write_text("\n".join(lines))


EXPLANATION = """\
## How the tape stays small

- **Delta at write time.** A request body is stored against the most similar of the newest
  request bodies held in memory (in a conversation, the previous request): the bytes it shares
  at the front and the back are referenced, only the middle is written, zstd-compressed when
  that saves a tenth. Other bodies of 256 bytes or more are zstd-compressed. Nothing is
  written whole and rewritten later, so no page is left free and the file never needs a
  VACUUM after recording.
- **No full-copy cadence.** A delta chain is as long as the conversation. Reading a body
  deep in the chain does not rebuild the bodies in between: the wanted byte ranges are mapped
  down the chain and each delta's own bytes copied where they land, then the result is checked
  against the blob's sha256. The cold read of the 400th request is in the table above; replay
  reads each body next to its base, already in memory.
- **Durable record misses its target, and SQLite's own write is most of the way to it.**
  The crash contract (a SIGKILL loses at most the exchange in flight; `tests/test_tape.py`
  kills a recorder right after a response and finds that exchange on the tape) needs each
  exchange in the operating system's hands before the agent continues. The row "the
  exchange's rows alone" writes what record writes for one exchange (two blob rows with their
  hash index, the exchange row) raw, in one transaction, with no encoding and no Python
  around it: per request it costs well over half a bare request by itself, so even a record
  that did nothing else would sit above 1.5× here. The rest of record's overhead is the work
  on the agent's path: hashing both bodies for the digest, the secret scan, choosing the
  delta base and compressing what is new. The slow tail (the last row: requests over a
  millisecond, when the write-ahead log is folded into the tape or the shared disk is busy)
  lifts the means above the medians.
- **What an append-only journal buys, measured.** The prototype row appends each exchange
  to a journal file (one `writev`, as durable against a SIGKILL as a commit) and writes the
  tape on a background thread. The agent's median request gets cheaper, but the total work
  does not shrink: the background thread holds the interpreter lock while it encodes, the
  agent's next request waits for it, and a run that calls back to back is as slow as before
  once the thread has caught up ("until the background thread has caught up"). It would also
  need a recovery path (a journal left by a killed process folded in by the next opener) and
  readers in other processes (`watch`, `show`) would see each exchange only after the fold.
  For a gain that vanishes next to a real model call (hundreds of milliseconds), seamtape
  keeps the synchronous write. Folding the write-ahead log on a background thread was tried
  too (not measured here): with commits arriving faster than a passive checkpoint completes,
  the log never restarted and grew past its bound (`tests/test_tape_growth.py` failed), so it
  was left out."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, a smaller tape")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments", help="report folder")
    parser.add_argument(
        "--only",
        choices=("growth", "record", "memory", "scale"),
        help="measure one section again, keeping the others from OUT/storage.json",
    )
    args = parser.parse_args()
    runs, repeats, rounds = (100, 3, 6) if args.quick else (1000, 7, 20)
    import sqlite3

    results: dict[str, Any] = {
        "meta": {
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "date": time.strftime("%Y-%m-%d"),
            "quick": args.quick,
        }
    }
    sections = {
        "growth": lambda tmp: bench_growth(tmp),
        "record": lambda tmp: bench_record(tmp, rounds, 100),
        "memory": lambda tmp: bench_memory(tmp, (8 if args.quick else 50) * 2**20),
        "scale": lambda tmp: bench_scale(tmp, runs, 100, repeats),
    }
    if args.only:
        # One section measured again; the others are kept from the report already there.
        report = args.out / "storage.json"
        if not report.is_file():
            parser.error(f"--only keeps the other sections from {report}, which does not exist")
        previous = json.loads(report.read_text())
        results = {**previous, "meta": {**results["meta"], "only": args.only}}
    with tempfile.TemporaryDirectory() as tmpdir:
        for name, bench in sections.items():
            if not args.only or name == args.only:
                results[name] = bench(Path(tmpdir))
    write_reports(args.out, results)


if __name__ == "__main__":
    main()
