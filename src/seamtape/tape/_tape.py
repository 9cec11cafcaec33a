"""The tape: one SQLite file of runs, exchanges and draws, with bodies stored by sha256.

The schema lives here, in SQL a reader can run in the ``sqlite3`` shell. Loading a tape
never executes code: every column is plain text, numbers or bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .._errors import DamagedTapeError, TapeError, UnknownRunError

__all__ = ["SCHEMA_VERSION", "Draw", "Exchange", "RunInfo", "Tape", "blob_hash"]

SCHEMA_VERSION = 2

_SCHEMA_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Bodies, content-addressed: hash is the sha256 of the uncompressed bytes (32 raw bytes).
CREATE TABLE blob (
    hash  BLOB PRIMARY KEY,
    size  INTEGER NOT NULL,          -- uncompressed length in bytes
    codec INTEGER NOT NULL,          -- 0 raw, 1 zstd, 2 delta (see _pack_delta)
    data  BLOB NOT NULL
);

CREATE TABLE run (
    id        TEXT PRIMARY KEY,
    name      TEXT,
    created   REAL NOT NULL,         -- unix seconds
    parent    TEXT REFERENCES run(id),
    fork_step INTEGER,               -- the parent's step this run substituted
    mutation  TEXT,                  -- JSON: how the forked step was changed
    upstream  TEXT,                  -- base URL the agent's live requests went to
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

# Version 2: the simulator policy a run's live requests were answered by (a spec that
# ``seamtape.sim.policy_from_spec`` reads), so forks and re-recordings can restart it.
_RUN_SIM_POLICY = "ALTER TABLE run ADD COLUMN sim_policy TEXT"

_SCHEMA_V2 = f"""
{_RUN_SIM_POLICY};
"""

# Each migration takes a tape from version N to N + 1; index 0 creates version 1.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    lambda db: _run_script(db, _SCHEMA_V1),
    lambda db: _run_script(db, _SCHEMA_V2),
]

_RAW, _ZSTD, _DELTA = 0, 1, 2
_COMPRESS_MIN = 4096  # smaller bodies gain little, and replay reads them raw for free
_DELTA_MAX_DEPTH = 16  # a delta's base may itself be a delta, this many times at most
_DELTA_HEADER = struct.Struct(">32sQQ")  # base hash, shared prefix length, shared suffix length
_PREFETCH_KEEP = 1024  # stored rows kept from prefetches before the oldest are dropped
_BUSY_TIMEOUT = 60.0  # seconds a connection waits for another process's write to commit


# An exchange ready to write: the row, its two bodies (None: already stored) and the draws
# the agent made before it.
Record = tuple["Exchange", bytes | None, bytes | None, list["Draw"]]


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
    upstream: str | None
    status: str
    result: Any
    outcome: str | None
    digest: str | None
    has_result: bool = False
    exchanges: int = 0
    draws: int = 0
    sim_policy: str | None = None  # the simulator's policy spec, when upstream was one

    @property
    def recorded(self) -> bool:
        """Whether the run is a recording: not a fork, a blame trial or another lens's branch.

        A pytest ``--tape-mode=new`` extension is a recording too: it is what its test
        replays next. A run ingested from a trace holds no bytes to replay, so it is not.
        """
        if self.status == "ingested":
            return False
        return self.parent is None or (self.mutation or {}).get("kind") == "new"


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
        self._fresh: set[bytes] = set()  # blobs written raw by this handle, compacted at close
        self._rows: dict[bytes, tuple[int, bytes]] = {}  # prefetched, not yet decoded
        self._recent: dict[bytes, bytes] = {}  # a few decoded bodies: the bases of deltas
        self._verified: set[bytes] = set()  # blobs this handle has checked against their hash
        self._zstd_d: Any = None
        self._version = SCHEMA_VERSION
        if not self.path.exists():
            if not create:
                raise TapeError(f"{self.path}: no such tape")
        elif self.path.is_dir():
            raise TapeError(f"{self.path}: is a directory, not a tape")
        else:
            _check_sqlite_header(self.path)
        try:
            # Forks from several processes write to one tape (blame's trials): a writer that
            # finds the tape locked waits up to _BUSY_TIMEOUT seconds rather than failing.
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=_BUSY_TIMEOUT
            )
        except sqlite3.Error as exc:
            raise TapeError(f"{self.path}: cannot open ({exc})") from None
        try:
            with self._guard():
                # Read what the file is before writing anything to it: a file that is not a
                # tape is refused untouched.
                version = self._schema_version(create)
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL with synchronous=NORMAL: a committed exchange survives a crash of the
                # process (it is in the WAL); only power loss may drop the last commits.
                self._db.execute("PRAGMA synchronous=NORMAL")
                # An older tape is upgraded when something is first written to it, not when
                # it is read: replaying a committed tape leaves its bytes untouched.
                self._version = version
                if create and version == 0:
                    self._migrate(version)
        except BaseException:
            self._db.close()
            raise

    # -- opening ---------------------------------------------------------------------------

    def _schema_version(self, create: bool) -> int:
        tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
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
        return version

    def _migrate(self, version: int) -> None:
        if version < SCHEMA_VERSION:
            with self._lock, self._guard():
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    # Read again under the write lock: another process or thread may have
                    # created or upgraded the tape since this handle read it (many opening one
                    # new path at once), and then there is less, or nothing, to do.
                    version = self._schema_version(create=True)
                    for migrate in _MIGRATIONS[version:]:
                        migrate(self._db)
                    if version < SCHEMA_VERSION:
                        self._db.execute(
                            "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                            (str(SCHEMA_VERSION),),
                        )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            self._version = SCHEMA_VERSION

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise TapeError(f"{self.path}: damaged or not a tape ({exc})") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._version < SCHEMA_VERSION:
            self._migrate(self._version)
        with self._lock, self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Compact the blobs written through this handle, and close the file."""
        if self._db is None:
            return
        try:
            with self._lock:
                self._compact()
        finally:
            with self._lock:
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

    def prefetch(self, digests: Iterable[bytes]) -> None:
        """Read these blobs' stored rows in one query, ahead of ``blob`` and ``body_equals``."""
        if len(self._rows) > _PREFETCH_KEEP:
            self._rows.clear()  # the earlier windows' rows: replay has moved past them
        wanted = [d for d in dict.fromkeys(digests) if d not in self._rows]
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            with self._guard():
                rows = self._db.execute(
                    f"SELECT hash, codec, data FROM blob WHERE hash IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
            for digest, codec, data in rows:
                self._rows[digest] = (codec, data)

    def _row(self, digest: bytes) -> tuple[int, bytes]:
        # Not popped: one body may answer many steps (identical responses share a blob).
        row = self._rows.get(digest)
        if row is None:
            with self._guard():
                row = self._db.execute(
                    "SELECT codec, data FROM blob WHERE hash=?", (digest,)
                ).fetchone()
            if row is None:
                raise self._damaged(digest, "is missing")
        return row

    def blob(self, digest: bytes, *, remember: bool = True, verify: bool = True) -> bytes:
        """A body by its hash, decoded; ``remember`` keeps it as a base for the next delta.

        ``verify`` checks the body against its hash the first time this handle reads it, so
        bytes that reach a user or an agent are the bytes that were recorded; a body that does
        not match, or cannot be decoded, raises ``DamagedTapeError``.
        """
        known = self._recent.get(digest)
        if known is None:
            codec, data = self._row(digest)
            known = self._decode(digest, codec, data)
            if remember:
                self._remember(digest, known)
        if verify and digest not in self._verified:
            if blob_hash(known) != digest:
                self._recent.pop(digest, None)
                raise self._damaged(digest, "does not match its hash")
            self._verified.add(digest)
        return known

    def blobs(self, digests: Iterable[bytes]) -> dict[bytes, bytes]:
        wanted = list(dict.fromkeys(digests))
        self.prefetch(wanted)
        return {d: self.blob(d) for d in wanted}

    def body_equals(self, digest: bytes, data: bytes) -> bool:
        """Whether ``data`` is the stored body, compared byte for byte without re-hashing it.

        A delta-stored body is checked against its base piece by piece, with no copy; a match
        is remembered, so the next request's delta finds its base already in memory.
        """
        known = self._recent.get(digest)
        if known is not None:
            return known == data
        codec, stored = self._row(digest)
        if codec == _DELTA:
            base_digest, prefix, suffix, middle = self._unpack(digest, stored)
            if len(data) != prefix + len(middle) + suffix:
                return False
            base = memoryview(self.blob(base_digest, verify=False))
            equal = (
                data.startswith(base[:prefix])
                and data.startswith(middle, prefix)
                and data.endswith(base[len(base) - suffix :])
            )
        else:
            equal = self._decode(digest, codec, stored) == data
        if equal:
            self._remember(digest, data)
        return equal

    def _remember(self, digest: bytes, data: bytes) -> bytes:
        recent = self._recent
        recent[digest] = data
        if len(recent) > 8:
            del recent[next(iter(recent))]
        return data

    def _decode(self, digest: bytes, codec: int, data: bytes, depth: int = 0) -> bytes:
        """A stored row's bytes; damage (a bad zstd frame, a delta chain that loops or runs
        deeper than any writer makes) raises ``DamagedTapeError``, never a library error."""
        if not isinstance(data, bytes):
            raise self._damaged(digest, f"is stored as {type(data).__name__}, not bytes")
        if codec == _RAW:
            return data
        if codec == _ZSTD:
            if self._zstd_d is None:
                import zstandard

                self._zstd_d = zstandard.ZstdDecompressor()
            try:
                plain: bytes = self._zstd_d.decompress(data)
            except Exception as exc:  # zstandard.ZstdError: imported lazily, caught broadly
                raise self._damaged(digest, f"cannot decompress ({exc})") from None
            return plain
        if codec == _DELTA:
            base_digest, prefix, suffix, middle = self._unpack(digest, data)
            known = self._recent.get(base_digest)
            if known is None:
                if base_digest == digest or depth > _DELTA_MAX_DEPTH:
                    raise self._damaged(digest, "its delta chain loops or is too deep")
                base_codec, base_data = self._row(base_digest)
                known = self._remember(
                    base_digest, self._decode(base_digest, base_codec, base_data, depth + 1)
                )
            if prefix + suffix > len(known):
                raise self._damaged(digest, "its delta reaches past its base")
            tail = known[len(known) - suffix :] if suffix else b""
            return b"".join((known[:prefix], middle, tail))
        raise TapeError(f"{self.path}: blob codec {codec} is unknown; upgrade seamtape")

    def _unpack(self, digest: bytes, data: bytes) -> tuple[bytes, int, int, bytes]:
        if len(data) < _DELTA_HEADER.size:
            raise self._damaged(digest, "its delta header is cut short")
        return _unpack_delta(data)

    def _damaged(self, digest: bytes, why: str) -> DamagedTapeError:
        return DamagedTapeError(
            f"{self.path}: damaged tape, blob {digest.hex()[:12]} {why}: run `seamtape verify`",
            reason=why,
        )

    def _compact(self) -> None:
        """Store the blobs this handle wrote raw in their compact form.

        Recording writes bodies raw so each exchange commits fast; this runs once, when the
        tape closes. A request body that shares most of its bytes with the run's previous
        request (a conversation grows by appending) is stored as a delta against it; other
        large bodies are zstd-compressed. A crash before this leaves valid raw blobs.
        """
        if not self._fresh:
            return
        import zstandard

        compressor = zstandard.ZstdCompressor(level=3)
        fresh, self._fresh = self._fresh, set()
        with self._write() as db:
            for base, digest in self._delta_candidates(db, fresh):
                if digest not in fresh:
                    continue
                chain = self._delta_chain(db, base)
                if digest in chain or len(chain) > _DELTA_MAX_DEPTH:
                    continue  # a cycle (A, B, A in one run), or a chain too long to decode
                body, base_body = self._raw_blob(db, digest), self.blob(base, verify=False)
                prefix = _common_prefix(base_body, body)
                suffix = _common_suffix(base_body, body, min(len(base_body), len(body)) - prefix)
                if prefix + suffix < len(body) // 2:
                    continue
                packed = _pack_delta(base, prefix, suffix, body[prefix : len(body) - suffix])
                db.execute("UPDATE blob SET codec=?, data=? WHERE hash=?", (_DELTA, packed, digest))
                fresh.discard(digest)
            for digest in fresh:
                row = db.execute(
                    "SELECT data FROM blob WHERE hash=? AND codec=0", (digest,)
                ).fetchone()
                if row is None:
                    continue
                packed = compressor.compress(row[0])
                if len(packed) < 0.9 * len(row[0]):
                    db.execute(
                        "UPDATE blob SET codec=?, data=? WHERE hash=?", (_ZSTD, packed, digest)
                    )
        self._recent.clear()

    def _delta_candidates(
        self, db: sqlite3.Connection, fresh: set[bytes]
    ) -> list[tuple[bytes, bytes]]:
        """(previous request body, request body) pairs of consecutive steps, in step order."""
        marks = ",".join("?" * len(fresh))
        rows = db.execute(
            f"SELECT run, request_body FROM exchange WHERE run IN (SELECT DISTINCT run FROM "
            f"exchange WHERE request_body IN ({marks})) ORDER BY run, seq",
            list(fresh),
        ).fetchall()
        return [
            (body_a, body_b)
            for (run_a, body_a), (run_b, body_b) in itertools.pairwise(rows)
            if run_a == run_b and body_a != body_b
        ]

    def _delta_chain(self, db: sqlite3.Connection, digest: bytes) -> list[bytes]:
        """The blob and the bases it is stored against, nearest first."""
        chain = [digest]
        while len(chain) <= _DELTA_MAX_DEPTH + 1:
            row = db.execute(
                "SELECT codec, substr(data, 1, 32) FROM blob WHERE hash=?", (chain[-1],)
            ).fetchone()
            if row is None or row[0] != _DELTA:
                break
            chain.append(row[1])
        return chain

    @staticmethod
    def _raw_blob(db: sqlite3.Connection, digest: bytes) -> bytes:
        data: bytes = db.execute("SELECT data FROM blob WHERE hash=?", (digest,)).fetchone()[0]
        return data

    # -- runs ------------------------------------------------------------------------------

    def create_run(
        self,
        name: str | None = None,
        *,
        parent: str | None = None,
        fork_step: int | None = None,
        mutation: Any = None,
        upstream: str | None = None,
        sim_policy: str | None = None,
    ) -> str:
        run_id = uuid.uuid4().hex[:12]
        with self._write() as db:
            db.execute(
                "INSERT INTO run(id, name, created, parent, fork_step, mutation, upstream, "
                "sim_policy, status) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 'recording')",
                (
                    run_id,
                    name,
                    time.time(),
                    parent,
                    fork_step,
                    None if mutation is None else json.dumps(mutation),
                    upstream,
                    sim_policy,
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

    def drop_run(self, run_id: str) -> None:
        """Remove a run that holds nothing worth keeping (a recording that never reached its
        upstream); its blobs stay until the tape is compacted."""
        with self._write() as db:
            db.execute("DELETE FROM draw WHERE run=?", (run_id,))
            db.execute("DELETE FROM exchange WHERE run=?", (run_id,))
            db.execute("DELETE FROM run WHERE id=?", (run_id,))

    def set_outcome(self, run_id: str, outcome: str | None) -> None:
        with self._write() as db:
            db.execute("UPDATE run SET outcome=? WHERE id=?", (outcome, run_id))

    def set_fork_step(self, run_id: str, step: int) -> None:
        """Where a run left its parent, when that is known only once it ends (an extension)."""
        with self._write() as db:
            db.execute("UPDATE run SET fork_step=? WHERE id=?", (step, run_id))

    def runs(self) -> list[RunInfo]:
        with self._guard():
            rows = self._db.execute(
                "SELECT id, name, created, parent, fork_step, mutation, upstream, status, result, "
                "outcome, digest, (SELECT count(*) FROM exchange e WHERE e.run = run.id), "
                "(SELECT count(*) FROM draw d WHERE d.run = run.id), "
                + ("sim_policy" if self._version >= 2 else "NULL")  # read before an upgrade
                + " FROM run ORDER BY created, rowid"
            ).fetchall()
        return [_run_info(r) for r in rows]

    def run(self, run_id: str | None = None) -> RunInfo:
        """The run with this id (or unique id prefix, or name); when ``run_id`` is None, the
        latest *recorded* run (see ``RunInfo.recorded``): forks and trials never become the
        default, so a lens writing into a tape does not change what its users replay."""
        runs = self.runs()
        if not runs:
            raise UnknownRunError(f"{self.path}: the tape holds no runs")
        if run_id is None:
            recorded = [r for r in runs if r.recorded]
            return (recorded or runs)[-1]
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
        before it, in one transaction.

        The cursor calls this before the agent gets control back, so a process killed at any
        moment loses at most the exchange in flight.
        """
        with self._write() as db:
            self._insert_exchange(db, (exchange, request_body, response_body, draws))

    def _insert_exchange(self, db: sqlite3.Connection, record: Record) -> None:
        exchange, request_body, response_body, draws = record
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
        return [Exchange(*row, _tape=self) for row in rows]  # type: ignore[misc]  # rows hold the columns before _tape

    def draws(self, run_id: str) -> list[Draw]:
        with self._guard():
            rows = self._db.execute(
                "SELECT seq, kind, value, step FROM draw WHERE run=? ORDER BY seq", (run_id,)
            ).fetchall()
        return [Draw(seq, kind, json.loads(value), step) for seq, kind, value, step in rows]

    # -- findings --------------------------------------------------------------------------

    # A guard's findings are kept in the meta table under "finding:<run>:<n>" (JSON), so that
    # writing them needs no schema change; a later schema may give them a table of their own.
    def add_finding(self, run_id: str, finding: dict[str, Any]) -> None:
        """Keep a finding a live guard made about a run (a JSON object)."""
        with self._write() as db:
            prefix = f"finding:{run_id}:"
            (count,) = db.execute(
                "SELECT count(*) FROM meta WHERE key >= ? AND key < ?", (prefix, prefix + "~")
            ).fetchone()
            db.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?)",
                (f"{prefix}{count + 1:06d}", json.dumps(finding, sort_keys=True)),
            )

    def findings(self, run_id: str) -> list[dict[str, Any]]:
        """The findings live guards kept about a run, in the order they were made."""
        prefix = f"finding:{run_id}:"
        with self._guard():
            rows = self._db.execute(
                "SELECT value FROM meta WHERE key >= ? AND key < ? ORDER BY key",
                (prefix, prefix + "~"),
            ).fetchall()
        return [json.loads(value) for (value,) in rows]

    def data_version(self) -> int:
        """A number that changes when another connection commits to the file (a cheap check)."""
        with self._guard():
            (version,) = self._db.execute("PRAGMA data_version").fetchone()
        return int(version)

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
                    body = self._decode(digest, codec, data)
                except DamagedTapeError as exc:  # a damaged frame or delta, reported not raised
                    problems.append(f"blob {digest.hex()[:12]}: {exc.reason}")
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
    (
        rid,
        name,
        created,
        parent,
        fork_step,
        mutation,
        upstream,
        status,
        result,
        outcome,
        digest,
        n,
        d,
        sim_policy,
    ) = row
    return RunInfo(
        id=rid,
        name=name,
        created=created,
        parent=parent,
        fork_step=fork_step,
        mutation=None if mutation is None else json.loads(mutation),
        upstream=upstream,
        status=status,
        result=None if result is None else json.loads(result),
        has_result=result is not None,
        outcome=outcome,
        digest=digest,
        exchanges=n,
        draws=d,
        sim_policy=sim_policy,
    )


def _pack_delta(base: bytes, prefix: int, suffix: int, middle: bytes) -> bytes:
    """A body as the base's first ``prefix`` bytes, ``middle``, and the base's last ``suffix``."""
    return _DELTA_HEADER.pack(base, prefix, suffix) + middle


def _unpack_delta(data: bytes) -> tuple[bytes, int, int, bytes]:
    base, prefix, suffix = _DELTA_HEADER.unpack_from(data)
    return base, prefix, suffix, data[_DELTA_HEADER.size :]


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix, by binary search over memcmp-backed startswith."""
    lo, hi, view = 0, min(len(a), len(b)), memoryview(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.startswith(view[:mid]):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    lo, hi, view = 0, max(limit, 0), memoryview(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.endswith(view[len(b) - mid :]):
            lo = mid
        else:
            hi = mid - 1
    return lo


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
    # Only a tape at rest can be judged by its length: while any connection has it open
    # (a -shm file), or a WAL holds pages, the header's page count may run ahead of the file.
    at_rest = not any(path.with_name(path.name + s).exists() for s in ("-wal", "-shm"))
    if pages and at_rest and size < pages * page_size:
        raise TapeError(f"{path}: damaged tape, truncated ({size} bytes of {pages * page_size})")
