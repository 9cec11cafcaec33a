"""The tape: one SQLite file of runs, exchanges and draws, with bodies stored by sha256.

The schema lives here, in SQL a reader can run in the ``sqlite3`` shell. Loading a tape
never executes code: every column is plain text, numbers or bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ._errors import TapeError, UnknownRunError

__all__ = ["SCHEMA_VERSION", "Draw", "Exchange", "RunInfo", "Tape", "blob_hash"]

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Bodies, content-addressed: hash is the sha256 of the uncompressed bytes (32 raw bytes).
CREATE TABLE blob (
    hash  BLOB PRIMARY KEY,
    size  INTEGER NOT NULL,          -- uncompressed length in bytes
    codec INTEGER NOT NULL,          -- 0 raw, 1 zstd
    data  BLOB NOT NULL
);

CREATE TABLE run (
    id        TEXT PRIMARY KEY,
    name      TEXT,
    created   REAL NOT NULL,         -- unix seconds
    parent    TEXT REFERENCES run(id),
    fork_step INTEGER,               -- the parent's step this run substituted
    mutation  TEXT,                  -- JSON: how the forked step was changed
    status    TEXT NOT NULL,         -- recording | complete | failed
    result    TEXT,                  -- JSON: what the agent returned
    outcome   TEXT,                  -- an oracle's verdict, when one graded the run
    digest    TEXT                   -- hex hash chain over exchanges and draws
);

CREATE TABLE exchange (
    run              TEXT NOT NULL REFERENCES run(id),
    seq              INTEGER NOT NULL,   -- 1-based, in the order requests reached the seam
    batch            INTEGER NOT NULL,   -- seq of the first exchange it was in flight with
    method           TEXT NOT NULL,
    url              TEXT NOT NULL,      -- API keys in the query string masked
    request_headers  TEXT NOT NULL,      -- JSON [[name, value], ...], order and case kept
    request_body     BLOB NOT NULL REFERENCES blob(hash),
    status           INTEGER NOT NULL,   -- 0 when the attempt failed before a response
    response_headers TEXT NOT NULL,
    http_version     TEXT NOT NULL,
    reason           TEXT NOT NULL,
    response_body    BLOB NOT NULL REFERENCES blob(hash),
    chunks           TEXT,               -- JSON [[bytes, ms since start], ...] as they arrived
    error            TEXT,               -- JSON {"type", "message"} of a transport error
    started          REAL NOT NULL,
    ended            REAL NOT NULL,
    PRIMARY KEY (run, seq)
);

CREATE TABLE draw (
    run   TEXT NOT NULL REFERENCES run(id),
    seq   INTEGER NOT NULL,              -- 1-based, in the order the agent drew
    step  INTEGER NOT NULL,              -- how many exchanges had begun when it was drawn
    kind  TEXT NOT NULL,                 -- now | time | monotonic | uuid4 | random | ...
    value TEXT NOT NULL,                 -- JSON
    PRIMARY KEY (run, seq)
);
"""

# Each migration takes a tape from version N to N + 1; index 0 creates version 1.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    lambda db: _run_script(db, _SCHEMA_V1),
]

_RAW, _ZSTD = 0, 1
_COMPRESS_MIN = 4096  # smaller bodies gain little, and replay reads them raw for free


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # executescript() would commit the migration's transaction half-way; run each statement.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def blob_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass
class RunInfo:
    id: str
    name: str | None
    created: float
    parent: str | None
    fork_step: int | None
    mutation: Any
    status: str
    result: Any
    outcome: str | None
    digest: str | None
    has_result: bool = False
    exchanges: int = 0
    draws: int = 0


@dataclass
class Draw:
    seq: int
    kind: str
    value: Any
    step: int = 0


@dataclass
class Exchange:
    """One HTTP request and its response; bodies are blob hashes, read from the tape on demand."""

    run: str
    seq: int
    batch: int
    method: str
    url: str
    request_headers_json: str
    request_body: bytes
    status: int
    response_headers_json: str
    http_version: str
    reason: str
    response_body: bytes
    chunks_json: str | None = None
    error_json: str | None = None
    started: float = 0.0
    ended: float = 0.0
    _tape: Tape | None = field(default=None, repr=False, compare=False)

    @cached_property
    def request_headers(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in json.loads(self.request_headers_json)]

    @cached_property
    def response_headers(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in json.loads(self.response_headers_json)]

    @cached_property
    def chunks(self) -> list[tuple[int, float]] | None:
        if self.chunks_json is None:
            return None
        return [(n, t) for n, t in json.loads(self.chunks_json)]

    @cached_property
    def error(self) -> dict[str, str] | None:
        return None if self.error_json is None else json.loads(self.error_json)

    @property
    def duration_ms(self) -> float:
        return (self.ended - self.started) * 1000.0

    def request_bytes(self) -> bytes:
        assert self._tape is not None
        return self._tape.blob(self.request_body)

    def response_bytes(self) -> bytes:
        assert self._tape is not None
        return self._tape.blob(self.response_body)


_EXCHANGE_COLUMNS = (
    "run, seq, batch, method, url, request_headers, request_body, status, response_headers, "
    "http_version, reason, response_body, chunks, error, started, ended"
)


class Tape:
    """One tape file, through one long-lived connection shared by the threads of a session."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._fresh: set[bytes] = set()  # blobs written raw by this handle, compressed at close
        self._zstd_d: Any = None
        if not self.path.exists():
            if not create:
                raise TapeError(f"{self.path}: no such tape")
        elif self.path.is_dir():
            raise TapeError(f"{self.path}: is a directory, not a tape")
        else:
            _check_sqlite_header(self.path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise TapeError(f"{self.path}: cannot open ({exc})") from None
        try:
            with self._guard():
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL with synchronous=NORMAL: a committed exchange survives a crash of the
                # process (it is in the WAL); only power loss may drop the last commits.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._prepare_schema(create)
        except BaseException:
            self._db.close()
            raise

    # -- opening ---------------------------------------------------------------------------

    def _prepare_schema(self, create: bool) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            if not create:
                raise TapeError(f"{self.path}: empty file, not a seamtape tape")
            version = 0
        elif "meta" not in tables:
            raise TapeError(f"{self.path}: an SQLite file, but not a seamtape tape")
        else:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                raise TapeError(f"{self.path}: not a seamtape tape (no schema version)")
            version = int(row[0])
        if version > SCHEMA_VERSION:
            raise TapeError(
                f"{self.path}: written by a newer seamtape (tape schema {version}, this seamtape "
                f"reads up to {SCHEMA_VERSION}); upgrade seamtape to read it"
            )
        if version < SCHEMA_VERSION:
            with self._write():
                for migrate in _MIGRATIONS[version:]:
                    migrate(self._db)
                self._db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise TapeError(f"{self.path}: damaged or not a tape ({exc})") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._db is None:
                return
            try:
                self._compact()
            finally:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Tape:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- blobs -----------------------------------------------------------------------------

    def _put_blob(self, db: sqlite3.Connection, data: bytes, digest: bytes | None = None) -> bytes:
        digest = digest or blob_hash(data)
        cur = db.execute(
            "INSERT OR IGNORE INTO blob(hash, size, codec, data) VALUES(?, ?, 0, ?)",
            (digest, len(data), data),
        )
        if cur.rowcount and len(data) >= _COMPRESS_MIN:
            self._fresh.add(digest)
        return digest

    def put_blob(self, data: bytes) -> bytes:
        with self._write() as db:
            return self._put_blob(db, data)

    def blob(self, digest: bytes) -> bytes:
        with self._guard():
            row = self._db.execute("SELECT codec, data FROM blob WHERE hash=?", (digest,)).fetchone()
        if row is None:
            raise TapeError(f"{self.path}: damaged tape, blob {digest.hex()[:12]} is missing")
        return self._decode(row[0], row[1])

    def blobs(self, digests: Iterable[bytes]) -> dict[bytes, bytes]:
        wanted = list(dict.fromkeys(digests))
        found: dict[bytes, bytes] = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            with self._guard():
                rows = self._db.execute(
                    f"SELECT hash, codec, data FROM blob WHERE hash IN ({marks})", part
                ).fetchall()
            for digest, codec, data in rows:
                found[digest] = self._decode(codec, data)
        missing = [d for d in wanted if d not in found]
        if missing:
            raise TapeError(f"{self.path}: damaged tape, blob {missing[0].hex()[:12]} is missing")
        return found

    def _decode(self, codec: int, data: bytes) -> bytes:
        if codec == _RAW:
            return data
        if codec == _ZSTD:
            if self._zstd_d is None:
                import zstandard

                self._zstd_d = zstandard.ZstdDecompressor()
            return self._zstd_d.decompress(data)
        raise TapeError(f"{self.path}: blob codec {codec} is unknown; upgrade seamtape")

    def _compact(self) -> None:
        """Compress the blobs this handle wrote raw.

        Recording writes bodies raw so each exchange commits fast; the compression happens
        once, here, when the session closes. A crash before this leaves valid raw blobs.
        """
        if not self._fresh:
            return
        import zstandard

        compressor = zstandard.ZstdCompressor(level=3)
        fresh, self._fresh = list(self._fresh), set()
        with self._write() as db:
            for digest in fresh:
                row = db.execute("SELECT data FROM blob WHERE hash=? AND codec=0", (digest,)).fetchone()
                if row is None:
                    continue
                packed = compressor.compress(row[0])
                if len(packed) < 0.9 * len(row[0]):
                    db.execute(
                        "UPDATE blob SET codec=1, data=? WHERE hash=?", (packed, digest)
                    )

    # -- runs ------------------------------------------------------------------------------

    def create_run(
        self,
        name: str | None = None,
        *,
        parent: str | None = None,
        fork_step: int | None = None,
        mutation: Any = None,
    ) -> str:
        run_id = uuid.uuid4().hex[:12]
        with self._write() as db:
            db.execute(
                "INSERT INTO run(id, name, created, parent, fork_step, mutation, status) "
                "VALUES(?, ?, ?, ?, ?, ?, 'recording')",
                (
                    run_id,
                    name,
                    time.time(),
                    parent,
                    fork_step,
                    None if mutation is None else json.dumps(mutation),
                ),
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        digest: str | None,
        result: Any = None,
        has_result: bool = False,
        outcome: str | None = None,
    ) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE run SET status=?, digest=?, result=?, outcome=? WHERE id=?",
                (
                    status,
                    digest,
                    json.dumps(result, sort_keys=True) if has_result else None,
                    outcome,
                    run_id,
                ),
            )

    def set_outcome(self, run_id: str, outcome: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE run SET outcome=? WHERE id=?", (outcome, run_id))

    def runs(self) -> list[RunInfo]:
        with self._guard():
            rows = self._db.execute(
                "SELECT id, name, created, parent, fork_step, mutation, status, result, outcome, "
                "digest, (SELECT count(*) FROM exchange e WHERE e.run = run.id), "
                "(SELECT count(*) FROM draw d WHERE d.run = run.id) "
                "FROM run ORDER BY created, rowid"
            ).fetchall()
        return [_run_info(r) for r in rows]

    def run(self, run_id: str | None = None) -> RunInfo:
        """The run with this id (or unique id prefix); the latest run when ``run_id`` is None."""
        runs = self.runs()
        if not runs:
            raise UnknownRunError(f"{self.path}: the tape holds no runs")
        if run_id is None:
            return runs[-1]
        exact = [r for r in runs if r.id == run_id]
        found = exact or [r for r in runs if r.id.startswith(run_id)]
        if len(found) == 1:
            return found[0]
        if found:
            raise UnknownRunError(f"{self.path}: run id {run_id!r} is ambiguous")
        names = [r for r in runs if r.name == run_id]
        if names:
            return names[-1]
        raise UnknownRunError(
            f"{self.path}: no run {run_id!r} (runs: {', '.join(r.id for r in runs[-5:])})"
        )

    # -- exchanges and draws ---------------------------------------------------------------

    def add_exchange(
        self,
        exchange: Exchange,
        request_body: bytes | None,
        response_body: bytes | None,
        draws: list[Draw],
    ) -> None:
        """Write one exchange, its bodies (None: already on the tape) and the draws made
        before it, in one transaction."""
        with self._write() as db:
            if request_body is not None:
                self._put_blob(db, request_body, exchange.request_body)
            if response_body is not None:
                self._put_blob(db, response_body, exchange.response_body)
            db.execute(
                f"INSERT INTO exchange({_EXCHANGE_COLUMNS}) "
                "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    exchange.run,
                    exchange.seq,
                    exchange.batch,
                    exchange.method,
                    exchange.url,
                    exchange.request_headers_json,
                    exchange.request_body,
                    exchange.status,
                    exchange.response_headers_json,
                    exchange.http_version,
                    exchange.reason,
                    exchange.response_body,
                    exchange.chunks_json,
                    exchange.error_json,
                    exchange.started,
                    exchange.ended,
                ),
            )
            self._insert_draws(db, exchange.run, draws)

    def add_draws(self, run_id: str, draws: list[Draw]) -> None:
        if draws:
            with self._write() as db:
                self._insert_draws(db, run_id, draws)

    @staticmethod
    def _insert_draws(db: sqlite3.Connection, run_id: str, draws: list[Draw]) -> None:
        db.executemany(
            "INSERT INTO draw(run, seq, step, kind, value) VALUES(?, ?, ?, ?, ?)",
            [(run_id, d.seq, d.step, d.kind, json.dumps(d.value)) for d in draws],
        )

    def exchanges(self, run_id: str) -> list[Exchange]:
        with self._guard():
            rows = self._db.execute(
                f"SELECT {_EXCHANGE_COLUMNS} FROM exchange WHERE run=? ORDER BY seq", (run_id,)
            ).fetchall()
        return [Exchange(*row, _tape=self) for row in rows]

    def draws(self, run_id: str) -> list[Draw]:
        with self._guard():
            rows = self._db.execute(
                "SELECT seq, kind, value, step FROM draw WHERE run=? ORDER BY seq", (run_id,)
            ).fetchall()
        return [Draw(seq, kind, json.loads(value), step) for seq, kind, value, step in rows]

    # -- integrity -------------------------------------------------------------------------

    def verify_blobs(self) -> list[str]:
        """Problems found re-hashing every blob and following every exchange's references."""
        problems: list[str] = []
        with self._guard():
            check = self._db.execute("PRAGMA integrity_check").fetchall()
            if check != [("ok",)]:
                problems.extend(f"sqlite: {r[0]}" for r in check[:10])
            for digest, size, codec, data in self._db.execute(
                "SELECT hash, size, codec, data FROM blob"
            ):
                try:
                    body = self._decode(codec, data)
                except Exception as exc:  # a damaged zstd frame, reported not raised
                    problems.append(f"blob {digest.hex()[:12]}: cannot decompress ({exc})")
                    continue
                if len(body) != size or blob_hash(body) != digest:
                    problems.append(f"blob {digest.hex()[:12]}: content does not match its hash")
            for run, seq in self._db.execute(
                "SELECT run, seq FROM exchange e WHERE NOT EXISTS "
                "(SELECT 1 FROM blob b WHERE b.hash = e.request_body) OR NOT EXISTS "
                "(SELECT 1 FROM blob b WHERE b.hash = e.response_body)"
            ):
                problems.append(f"run {run} step {seq}: references a missing blob")
        return problems

    def blob_sizes(self, run_id: str) -> dict[bytes, int]:
        """Uncompressed sizes of the bodies a run references, without reading them."""
        with self._guard():
            rows = self._db.execute(
                "SELECT hash, size FROM blob WHERE hash IN (SELECT request_body FROM exchange "
                "WHERE run=? UNION SELECT response_body FROM exchange WHERE run=?)",
                (run_id, run_id),
            ).fetchall()
        return dict(rows)

    def stats(self) -> dict[str, int]:
        with self._guard():
            blobs, raw, stored = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(length(data)), 0) FROM blob"
            ).fetchone()
        return {"blobs": blobs, "bytes": raw, "stored_bytes": stored}


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    rid, name, created, parent, fork_step, mutation, status, result, outcome, digest, n, d = row
    return RunInfo(
        id=rid,
        name=name,
        created=created,
        parent=parent,
        fork_step=fork_step,
        mutation=None if mutation is None else json.loads(mutation),
        status=status,
        result=None if result is None else json.loads(result),
        has_result=result is not None,
        outcome=outcome,
        digest=digest,
        exchanges=n,
        draws=d,
    )


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_sqlite_header(path: Path) -> None:
    """Refuse a file that is not SQLite, or is shorter than its own header says (truncated)."""
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise TapeError(f"{path}: not a seamtape tape (not an SQLite file)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    wal = path.with_name(path.name + "-wal")
    wal_pending = wal.exists() and wal.stat().st_size > 0
    if pages and not wal_pending and size < pages * page_size:
        raise TapeError(
            f"{path}: damaged tape, truncated ({size} bytes of {pages * page_size})"
        )
