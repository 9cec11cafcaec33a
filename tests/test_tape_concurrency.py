"""Many processes and threads that open one new tape path at the same moment all succeed."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

from seamtape.tape import SCHEMA_VERSION, Tape, blob_hash

PROCESSES = 12
THREADS = 48


def _open_after(barrier: threading.Barrier | object, path: str, errors: list[str]) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        tape = Tape(path, create=True)
        tape.create_run("one of many")
        tape.close()
    except Exception as exc:  # every failure is collected and shown, not raised in a thread
        errors.append(f"{type(exc).__name__}: {exc}")


def _child(barrier: object, path: str, results: object) -> None:
    errors: list[str] = []
    _open_after(barrier, path, errors)
    results.put(errors[0] if errors else "")  # type: ignore[attr-defined]


def _schema_of(path: Path) -> tuple[list[tuple[str, str]], int, int]:
    with sqlite3.connect(path) as db:
        meta = db.execute("SELECT key, value FROM meta").fetchall()
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()
        runs = db.execute("SELECT count(*) FROM run").fetchone()
    return meta, tables[0], runs[0]


def test_processes_creating_one_tape_at_once_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "new.tape"
    # Spawned, not forked: a fork of a process with threads (a test that ran earlier) can
    # deadlock in the child.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    children = [
        ctx.Process(target=_child, args=(barrier, str(path), results)) for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=60)
    assert [o for o in outcomes if o] == []
    assert all(child.exitcode == 0 for child in children)
    meta, tables, runs = _schema_of(path)
    assert meta == [("schema_version", str(SCHEMA_VERSION))]
    assert runs == PROCESSES
    assert tables >= 5


def test_threads_creating_one_tape_at_once_all_succeed(tmp_path: Path) -> None:
    path = tmp_path / "new.tape"
    barrier = threading.Barrier(THREADS)
    errors: list[str] = []
    threads = [
        threading.Thread(target=_open_after, args=(barrier, str(path), errors))
        for _ in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    meta, _, runs = _schema_of(path)
    assert meta == [("schema_version", str(SCHEMA_VERSION))]
    assert runs == THREADS


def test_threads_sharing_one_handle_read_and_write_compressed_bodies(tmp_path: Path) -> None:
    # A session's threads (the proxy's, concurrent SDK calls) share one handle: its zstd
    # contexts must not be shared between them.
    bodies = [(f"body {n} " + "distinct words " * (200 + n)).encode() * 3 for n in range(64)]
    errors: list[str] = []
    with Tape(tmp_path / "shared.tape", create=True) as tape:
        barrier = threading.Barrier(8)

        def write(start: int) -> None:
            barrier.wait()
            try:
                for body in bodies[start::8]:
                    assert tape.blob(tape.put_blob(body), remember=False) == body
            except Exception as exc:  # collected and shown, not raised in a thread
                errors.append(f"{type(exc).__name__}: {exc}")

        writers = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
    assert errors == []
    with Tape(tmp_path / "shared.tape") as tape:
        digests = [blob_hash(body) for body in bodies]
        barrier = threading.Barrier(8)

        def read() -> None:
            barrier.wait()
            try:
                for _ in range(4):
                    for digest, body in zip(digests, bodies, strict=True):
                        assert tape.blob(digest, remember=False) == body
            except Exception as exc:  # collected and shown, not raised in a thread
                errors.append(f"{type(exc).__name__}: {exc}")

        readers = [threading.Thread(target=read) for _ in range(8)]
        for thread in readers:
            thread.start()
        for thread in readers:
            thread.join()
    assert errors == []
