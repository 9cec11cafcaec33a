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
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import zstandard

from .._errors import DamagedTapeError, TapeError, UnknownRunError

__all__ = ["SCHEMA_VERSION", "Draw", "Exchange", "RunInfo", "Tape", "blob_hash", "chunks_hash"]

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

# Schema 2 also gives a delta's base a column of its own, so a query can tell which blobs are
# still referenced (gc, prune); forks are found by their parent through an index. A schema-1
# delta packed the base's 32-byte hash in front of its data.
_SCHEMA_V2 = f"""
{_RUN_SIM_POLICY};

ALTER TABLE blob ADD COLUMN base BLOB REFERENCES blob(hash);  -- a delta's base, else NULL

UPDATE blob SET base = substr(data, 1, 32), data = substr(data, 33) WHERE codec = 2;

CREATE INDEX blob_base ON blob(base) WHERE base IS NOT NULL;

CREATE INDEX run_parent ON run(parent);

CREATE INDEX run_created ON run(created);
"""

# Each migration takes a tape from version N to N + 1; index 0 creates version 1. They run in
# one transaction with the schema_version update: a tape is upgraded whole or not at all.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    lambda db: _run_script(db, _SCHEMA_V1),
    lambda db: _run_script(db, _SCHEMA_V2),
]

_RAW, _ZSTD, _DELTA, _DELTA_ZSTD = 0, 1, 2, 3  # 3: a delta whose own bytes are zstd
_COMPRESS_MIN = 256  # below this zstd's frame costs more than it saves
_DELTAS = (_DELTA, _DELTA_ZSTD)
_DELTA_MIN = 512  # below this a delta's header and base lookup cost more than they save
_DELTA_HEADER = struct.Struct(">QQ")  # shared prefix length, shared suffix length
# RunInfo.recorded, in SQL: not ingested, and not a fork unless a pytest extension.
_RECORDED = "status != 'ingested' AND (parent IS NULL OR json_extract(mutation, '$.kind') = 'new')"
_CHAIN_READ_MAX = 100_000  # bases read ahead in one query (a looping chain stops here)
_DELTA_CANDIDATES = 3  # the newest remembered bodies a delta's base is chosen from
_RECENT_KEEP = 8  # decoded bodies kept in memory: the bases of the next deltas
_PREFETCH_KEEP = 1024  # stored rows kept from prefetches before the oldest are dropped
_WAL_PAGES = 256  # write-ahead log pages folded into the tape at a time (1 MiB)
_BUSY_TIMEOUT = 60.0  # seconds a connection waits for another process's write to commit


# An exchange ready to write: the row, its two bodies (None: already stored) and the draws
# the agent made before it.
# A response body may come as its streamed parts, so that it is never joined in memory.
Record = tuple["Exchange", bytes | None, "bytes | Sequence[bytes] | None", list["Draw"]]
# A blob's stored row: codec, data, delta base (or None), uncompressed size.
_BlobRow = tuple[int, bytes, bytes | None, int]


def _run_script(db: sqlite3.Connection, script: str) -> None:
    # executescript() would commit the migration's transaction half-way; run each statement,
    # cut where SQLite itself says a statement is complete (a ";" in a comment or a string
    # literal does not end one).
    for statement in _statements(script):
        db.execute(statement)


def _statements(script: str) -> list[str]:
    """The script's statements: pieces between semicolons, joined until SQLite calls them
    complete, so a semicolon inside a string literal or a comment does not cut one."""
    statements, pending = [], ""
    *pieces, rest = script.split(";")
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    rest = pending + rest  # after the last complete statement: blank, or only comments
    if any(line.split("--", 1)[0].strip() for line in rest.splitlines()):
        raise ValueError(f"incomplete SQL statement at the end of a script: {rest.strip()!r}")
    return statements


def blob_hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def chunks_hash(parts: Sequence[bytes]) -> bytes:
    """The blob hash of the body these parts make, without joining them."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


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


_OPEN_TRIES = 8  # about 1.3 s of backing off in all


class _Busy(Exception):
    """SQLite reported the file busy or locked without waiting for it."""


class Tape:
    """One tape file, through one long-lived connection shared by the threads of a session."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._rows: dict[bytes, _BlobRow] = {}  # prefetched, not yet decoded
        self._recent: dict[bytes, bytes] = {}  # a few decoded bodies: the bases of deltas
        self._verified: set[bytes] = set()  # blobs this handle has checked against their hash
        # zstandard's contexts are not safe across threads, and a session's threads share
        # this handle: each thread keeps its own pair.
        self._zstd = threading.local()
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
            for attempt in range(_OPEN_TRIES):
                try:
                    with self._guard():
                        self._prepare(create)
                    break
                except _Busy:
                    # Many openers of one new path at once: SQLite answers a reader that meets
                    # a connection switching the file to WAL with "busy", without waiting.
                    if attempt == _OPEN_TRIES - 1:
                        raise TapeError(f"{self.path}: stayed locked while opening") from None
                    time.sleep(0.005 * 2**attempt)
        except BaseException:
            self._db.close()
            raise

    def _prepare(self, create: bool) -> None:
        """Read the schema version and set the connection up; ``_Busy`` when SQLite says so."""
        try:
            # Read what the file is before writing anything to it: a file that is not a
            # tape is refused untouched.
            version = self._schema_version(create)
            if version == 0:
                # Before the first table: space freed by gc and prune goes back to the
                # file system (PRAGMA incremental_vacuum), with no full rewrite.
                self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: a committed exchange survives a crash of the
            # process (it is in the WAL); only power loss may drop the last commits.
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Keep the write-ahead log small while a long run records: fold it into the
            # tape every _WAL_PAGES pages and cut the file back to that size after.
            self._db.execute(f"PRAGMA wal_autocheckpoint={_WAL_PAGES}")
            self._db.execute(f"PRAGMA journal_size_limit={_WAL_PAGES * 4096}")
            # An older tape is upgraded when something is first written to it, not when
            # it is read: replaying a committed tape leaves its bytes untouched.
            self._version = version
            if create and version == 0:
                self._migrate(version)
        except sqlite3.OperationalError as exc:
            # the primary code: extended ones (SQLITE_BUSY_RECOVERY, ...) keep it in the low byte
            if (exc.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise _Busy from None
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

    def upgrade(self) -> None:
        """Upgrade an older tape now (it is otherwise upgraded by its first write)."""
        self._migrate(self._version)

    def _migrate(self, version: int) -> None:
        """Run the migrations from ``version`` in one transaction with the version bump."""
        if version >= SCHEMA_VERSION:
            return
        with self._lock, self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have upgraded the tape while this one waited for the
                # write lock: read the version again, under the lock.
                version = self._stored_version(version)
                for migrate in _MIGRATIONS[version:]:
                    migrate(self._db)
                self._db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        self._version = SCHEMA_VERSION

    def _stored_version(self, default: int) -> int:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return default
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return default if row is None else int(row[0])

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        # One statement at a time on the shared connection: sqlite3 reuses a cached statement
        # for the same SQL, and two threads stepping it at once read each other's rows.
        with self._lock:
            if self._db is None:  # e.g. an Exchange's bytes read after its tape was closed
                raise TapeError(f"{self.path}: the tape is closed; read it inside its block")
            try:
                yield
            except sqlite3.ProgrammingError:
                raise  # a wrong argument (a RunInfo for a run id), not a damaged file
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
        """Close the file (every write is already committed in its compact form)."""
        if self._db is None:
            return
        with self._lock:
            self._db.close()
            self._db = None  # type: ignore[assignment]
            self._recent.clear()
            self._rows.clear()

    def __enter__(self) -> Tape:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- blobs -----------------------------------------------------------------------------

    def _encode(
        self, data: bytes, digest: bytes, *, delta: bool = True
    ) -> tuple[int, bytes, bytes | None]:
        """How to store a body that is not on the tape yet: (codec, data, delta base).

        A body that shares most of its bytes with one held in memory (the run's previous
        request: a conversation grows by appending) is stored as a delta against it, so a run
        never writes its history twice; other large bodies are zstd-compressed. Everything is
        decided here, before the write, so no row is ever rewritten and no page left free.
        """
        if delta and len(data) >= _DELTA_MIN:
            best = self._delta_base(data, digest)
            if best is not None:
                base, prefix, suffix = best
                middle = data[prefix : len(data) - suffix]
                packed = self._compress(middle)
                if packed is not None:
                    return _DELTA_ZSTD, _pack_delta(prefix, suffix, packed), base
                return _DELTA, _pack_delta(prefix, suffix, middle), base
        packed = self._compress(data)
        if packed is not None:
            return _ZSTD, packed, None
        return _RAW, data, None

    def _compress(self, data: bytes) -> bytes | None:
        """``data`` zstd-compressed, or None when that saves less than a tenth."""
        if len(data) < _COMPRESS_MIN:
            return None
        packed: bytes = self._compressor().compress(data)
        return packed if len(packed) < 0.9 * len(data) else None

    def _delta_base(self, data: bytes, digest: bytes) -> tuple[bytes, int, int] | None:
        """The remembered body sharing the most leading and trailing bytes with ``data``.

        The newest first: in a conversation it is the previous request, and a base that
        leaves less than an eighth of the body to store ends the search.
        """
        best: tuple[bytes, int, int] | None = None
        shared = len(data) // 2  # a delta must save at least half of the body
        good_enough = len(data) - len(data) // 8
        with self._lock:
            candidates = list(self._recent.items())[-_DELTA_CANDIDATES:]
        for base_digest, base in reversed(candidates):
            if base_digest == digest or len(base) < shared:
                continue
            prefix = _common_prefix(base, data)
            suffix = _common_suffix(base, data, min(len(base), len(data)) - prefix)
            if prefix + suffix > shared:
                best, shared = (base_digest, prefix, suffix), prefix + suffix
                if shared >= good_enough:
                    break
        return best

    def _compressor(self) -> Any:
        compressor = getattr(self._zstd, "compressor", None)
        if compressor is None:
            # The frame carries a checksum: a damaged frame is refused, never misread.
            compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
            self._zstd.compressor = compressor
        return compressor

    def _decompressor(self) -> Any:
        decompressor = getattr(self._zstd, "decompressor", None)
        if decompressor is None:
            decompressor = zstandard.ZstdDecompressor()
            self._zstd.decompressor = decompressor
        return decompressor

    def _put_blob(
        self,
        db: sqlite3.Connection,
        data: bytes,
        digest: bytes | None = None,
        encoded: tuple[int, bytes, bytes | None] | None = None,
    ) -> bytes:
        digest = digest or blob_hash(data)
        encoded = encoded or self._encode(data, digest)
        base = encoded[2]
        if (
            base is not None
            and not db.execute("SELECT 1 FROM blob WHERE hash=?", (base,)).fetchone()
        ):
            # The base was removed since it was read (a prune from another process): store
            # the body on its own rather than against a blob that is gone.
            encoded = self._encode(data, digest, delta=False)
        self._insert_blob(db, digest, len(data), encoded)
        return digest

    @staticmethod
    def _insert_blob(
        db: sqlite3.Connection, digest: bytes, size: int, encoded: tuple[int, bytes, bytes | None]
    ) -> None:
        codec, stored, base = encoded
        db.execute(
            "INSERT OR IGNORE INTO blob(hash, size, codec, data, base) VALUES(?, ?, ?, ?, ?)",
            (digest, size, codec, stored, base),
        )

    def put_blob(self, data: bytes) -> bytes:
        digest = blob_hash(data)
        encoded = self._encode(data, digest)
        with self._write() as db:
            return self._put_blob(db, data, digest, encoded)

    def remember(self, digest: bytes, data: bytes) -> None:
        """Keep a body in memory as a base for the deltas of the bodies written after it."""
        self._remember(digest, data)

    def prefetch(self, digests: Iterable[bytes]) -> None:
        """Read these blobs' stored rows in one query, ahead of ``blob`` and ``body_equals``."""
        if len(self._rows) > _PREFETCH_KEEP:
            self._rows.clear()  # the earlier windows' rows: replay has moved past them
        wanted = [d for d in dict.fromkeys(digests) if d not in self._rows]
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            with self._guard():
                rows = self._db.execute(
                    f"SELECT hash, codec, data, {self._base_column}, size FROM blob "
                    f"WHERE hash IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
            for digest, codec, data, base, size in rows:
                self._rows[digest] = self._stored_row(codec, data, base, size)

    def _row(self, digest: bytes) -> _BlobRow:
        # Not popped: one body may answer many steps (identical responses share a blob).
        row = self._rows.get(digest)
        if row is None:
            with self._guard():
                found = self._db.execute(
                    f"SELECT codec, data, {self._base_column}, size FROM blob WHERE hash=?",
                    (digest,),
                ).fetchone()
            if found is None:
                raise DamagedTapeError(
                    f"{self.path}: damaged tape, blob {digest.hex()[:12]} is missing"
                )
            row = self._stored_row(*found)
        return row

    @property
    def _base_column(self) -> str:
        return "base" if self._version >= 2 else "NULL"  # read before an upgrade

    def _stored_row(self, codec: int, data: bytes, base: bytes | None, size: int) -> _BlobRow:
        """A blob row in schema 2's shape; a schema-1 delta carried its base in its data."""
        if self._version < 2 and codec == _DELTA and base is None and len(data) >= 32:
            return codec, data[32:], data[:32], size
        return codec, data, base, size

    def blob(self, digest: bytes, *, remember: bool = True, verify: bool = True) -> bytes:
        """A body by its hash, decoded; ``remember`` keeps it as a base for the next delta.

        ``verify`` checks the body against its hash the first time this handle reads it, so
        bytes that reach a user or an agent are the bytes that were recorded; a body that does
        not match, or cannot be decoded, raises ``DamagedTapeError``.
        """
        known = self._recent.get(digest)
        if known is None:
            row = self._row(digest)
            known = self._decode(digest, row)
            if row[0] in _DELTAS:  # rebuilt, and checked against its hash as it was
                self._verified.add(digest)
            if remember:
                self._remember(digest, known)
        if verify and digest not in self._verified:
            if blob_hash(known) != digest:
                self._recent.pop(digest, None)
                raise DamagedTapeError(
                    f"{self.path}: damaged tape, blob {digest.hex()[:12]} does not match its "
                    "hash: run `seamtape verify`",
                    reason="does not match its hash",
                )
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
        row = self._row(digest)
        codec, stored, base_digest, size = row
        if len(data) != size:
            return False
        if codec in _DELTAS and base_digest is not None:
            prefix, suffix, middle = self._unpack_delta(codec, stored)
            if len(data) != prefix + len(middle) + suffix:
                return False
            base = memoryview(self.blob(base_digest))
            equal = (
                data.startswith(base[:prefix])
                and data.startswith(middle, prefix)
                and data.endswith(base[len(base) - suffix :])
            )
        else:
            equal = self._decode(digest, row) == data
        if equal:
            # Equal bytes have equal hashes: the body is verified as it stands, and the next
            # request's delta, built on it, is checked against it without hashing it again.
            self._verified.add(digest)
            self._remember(digest, data)
        return equal

    def _remember(self, digest: bytes, data: bytes) -> bytes:
        recent = self._recent
        recent.pop(digest, None)  # re-inserted as the newest
        recent[digest] = data
        if len(recent) > _RECENT_KEEP:
            del recent[next(iter(recent))]
        return data

    def _unpack_delta(self, codec: int, data: bytes) -> tuple[int, int, memoryview]:
        if len(data) < _DELTA_HEADER.size:
            raise DamagedTapeError(f"{self.path}: damaged tape, a delta blob is truncated")
        prefix, suffix = _DELTA_HEADER.unpack_from(data)
        middle = memoryview(data)[_DELTA_HEADER.size :]
        if codec == _DELTA_ZSTD:
            middle = memoryview(self._plain(_ZSTD, bytes(middle)))
        return prefix, suffix, middle

    def _plain(self, codec: int, data: bytes) -> bytes:
        if not isinstance(data, bytes):
            raise DamagedTapeError(
                f"{self.path}: damaged tape, a blob is stored as {type(data).__name__}, not "
                "bytes: run `seamtape verify`"
            )
        if codec == _RAW:
            return data
        if codec == _ZSTD:
            try:
                return self._decompressor().decompress(data)  # type: ignore[no-any-return]
            except Exception as exc:  # zstandard.ZstdError: a damaged frame
                raise DamagedTapeError(
                    f"{self.path}: damaged tape, a blob cannot be decompressed ({exc})"
                ) from None
        raise TapeError(f"{self.path}: blob codec {codec} is unknown; upgrade seamtape")

    def _decode(self, digest: bytes, row: _BlobRow, *, check: bool = True) -> bytes:
        """A stored body, rebuilt byte for byte; a delta is checked against its hash.

        A delta chain is resolved without building the bodies in between: the wanted byte
        ranges are mapped down the chain, each delta's own bytes copied where they land, until
        a stored body (or one already in memory) supplies the rest. Reading step 400 of a
        conversation costs one pass over the chain's small rows and one copy of the result.
        """
        codec, data, base, size = row
        if codec not in _DELTAS:
            return self._plain(codec, data)
        out = bytearray(size)
        wanted = [(0, 0, size)]  # (offset in out, start, end) in the body of `node`
        node: bytes | None = digest
        seen: set[bytes] = set()
        rows = {digest: row}
        if base is not None and base not in self._recent and self._version >= 2:
            rows.update(self._chain(base))  # cold: the whole chain's rows in one query
        while wanted:
            if node is None or node in seen:
                raise DamagedTapeError(
                    f"{self.path}: damaged tape, blob {digest.hex()[:12]}'s delta chain loops or breaks"
                )
            seen.add(node)
            known = self._recent.get(node) if node != digest else None
            if known is None:
                codec, data, base, node_size = rows.pop(node) if node in rows else self._row(node)
                if codec in _DELTAS:
                    if base is None:
                        raise DamagedTapeError(
                            f"{self.path}: damaged tape, a delta blob has no base"
                        )
                    base_body = self._recent.get(base)
                    if base_body is None:
                        if base not in rows:  # read once: its size now, its data next
                            rows[base] = self._row(base)
                        base_size = rows[base][3]
                    else:
                        base_size = len(base_body)
                    wanted = self._map_delta(out, wanted, codec, data, node_size, base_size)
                    node = base
                    continue
                known = self._plain(codec, data)
            view = memoryview(known)
            for at, start, end in wanted:
                if end > len(view):
                    raise DamagedTapeError(
                        f"{self.path}: damaged tape, blob {digest.hex()[:12]}'s delta chain is inconsistent"
                    )
                out[at : at + end - start] = view[start:end]
            break
        body = bytes(out)
        if check and blob_hash(body) != digest:
            raise DamagedTapeError(
                f"{self.path}: damaged tape, blob {digest.hex()[:12]} does not match its hash; "
                "run `seamtape verify`"
            )
        return body

    def _chain(self, digest: bytes) -> dict[bytes, _BlobRow]:
        """The rows of a blob and of the bases below it, down to the first stored whole."""
        with self._guard():
            found = self._db.execute(
                "WITH RECURSIVE chain(hash, depth) AS (SELECT ?, 0 UNION "
                "SELECT b.base, c.depth + 1 FROM blob b JOIN chain c ON b.hash = c.hash "
                "WHERE b.base IS NOT NULL AND c.depth < ?) "
                "SELECT b.hash, b.codec, b.data, b.base, b.size FROM chain JOIN blob b USING (hash)",
                (digest, _CHAIN_READ_MAX),
            ).fetchall()
        return {h: (codec, data, base, size) for h, codec, data, base, size in found}

    def _map_delta(
        self,
        out: bytearray,
        wanted: list[tuple[int, int, int]],
        codec: int,
        data: bytes,
        size: int,
        base_size: int,
    ) -> list[tuple[int, int, int]]:
        """Copy a delta's own bytes into ``out``; the ranges still wanted, in its base."""
        prefix, suffix, middle = self._unpack_delta(codec, data)
        if prefix + len(middle) + suffix != size or prefix + suffix > base_size:
            raise DamagedTapeError(f"{self.path}: damaged tape, a delta blob is inconsistent")
        tail, shift = prefix + len(middle), base_size - size
        below: list[tuple[int, int, int]] = []
        for at, start, end in wanted:
            if start < prefix:
                _add_range(below, at, start, min(end, prefix))
            lo, hi = max(start, prefix), min(end, tail)
            if lo < hi:
                out[at + lo - start : at + hi - start] = middle[lo - prefix : hi - prefix]
            lo = max(start, tail)
            if lo < end:
                _add_range(below, at + lo - start, lo + shift, end + shift)
        return below

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

    @property
    def _run_columns(self) -> str:
        return (
            "id, name, created, parent, fork_step, mutation, upstream, status, result, outcome, "
            "digest, (SELECT count(*) FROM exchange e WHERE e.run = run.id), "
            "(SELECT count(*) FROM draw d WHERE d.run = run.id), "
            + ("sim_policy" if self._version >= 2 else "NULL")  # read before an upgrade
        )

    def runs(self) -> list[RunInfo]:
        return self._select_runs("1 ORDER BY created, rowid")

    def _latest_runs(self, where: str, limit: int, *args: Any) -> list[RunInfo]:
        """The newest runs matching ``where``, chosen before their exchanges are counted."""
        return self._select_runs(
            f"id IN (SELECT id FROM run WHERE {where} ORDER BY created DESC, rowid DESC "
            f"LIMIT {int(limit)}) ORDER BY created DESC, rowid DESC",
            *args,
        )

    def _select_runs(self, where: str, *args: Any) -> list[RunInfo]:
        with self._guard():
            rows = self._db.execute(
                f"SELECT {self._run_columns} FROM run WHERE {where}", args
            ).fetchall()
        return [_run_info(r) for r in rows]

    def run(self, run_id: str | None = None) -> RunInfo:
        """The run with this id (or unique id prefix, or name); when ``run_id`` is None, the
        latest *recorded* run (see ``RunInfo.recorded``): forks and trials never become the
        default, so a lens writing into a tape does not change what its users replay.

        Only the runs asked for are read: opening one run of a tape of thousands costs the
        same as opening a small tape.
        """
        if run_id is None:
            found = self._latest_runs(_RECORDED, 1) or self._latest_runs("1", 1)
            if not found:
                raise UnknownRunError(f"{self.path}: the tape holds no runs")
            return found[0]
        found = self._select_runs("id = ?", run_id) or self._select_runs(
            "substr(id, 1, ?) = ? LIMIT 2", len(run_id), run_id
        )
        if len(found) == 1:
            return found[0]
        if found:
            raise UnknownRunError(f"{self.path}: run id {run_id!r} is ambiguous")
        named = self._latest_runs("name = ?", 1, run_id)
        if named:
            return named[0]
        latest = self._latest_runs("1", 5)
        if not latest:
            raise UnknownRunError(f"{self.path}: the tape holds no runs")
        raise UnknownRunError(
            f"{self.path}: no run {run_id!r} (runs: {', '.join(r.id for r in reversed(latest))})"
        )

    # -- exchanges and draws ---------------------------------------------------------------

    def add_exchange(
        self,
        exchange: Exchange,
        request_body: bytes | None,
        response_body: bytes | Sequence[bytes] | None,
        draws: list[Draw],
    ) -> None:
        """Write one exchange, its bodies (None: already on the tape; a response may be given
        as its streamed parts) and the draws made before it, in one transaction.

        The cursor calls this before the agent gets control back, so a process killed at any
        moment loses at most the exchange in flight.
        """
        # Encoded before the write lock is taken: a delta or a compression is the slow part,
        # and other threads (and processes) commit meanwhile.
        request = (
            None if request_body is None else self._encode_new(exchange.request_body, request_body)
        )
        response: tuple[int, bytes, bytes | None] | None = None
        response_size = 0
        if isinstance(response_body, bytes | bytearray):
            response = self._encode_new(exchange.response_body, response_body, delta=False)
            response_size = len(response_body)
        elif response_body is not None:
            response = self._encode_parts(response_body)
            response_size = sum(len(p) for p in response_body)
        with self._write() as db:
            if request_body is not None:
                self._put_blob(db, request_body, exchange.request_body, request)
            if response is not None:
                self._insert_blob(db, exchange.response_body, response_size, response)
            self._insert_exchange(db, exchange, draws)
        if request_body is not None:
            # The next request of this conversation most likely repeats this one and adds a
            # turn: it is the base its delta will be taken against.
            with self._lock:
                self._remember(exchange.request_body, request_body)

    def _encode_parts(self, parts: Sequence[bytes]) -> tuple[int, bytes, bytes | None]:
        """A body given in parts, compressed part by part: it is joined only if it is stored
        raw (when zstd would not save a tenth)."""
        size = sum(len(p) for p in parts)
        if size >= _COMPRESS_MIN:
            stream = self._compressor().compressobj(size=size)
            packed = b"".join([*(stream.compress(p) for p in parts), stream.flush()])
            if len(packed) < 0.9 * size:
                return _ZSTD, packed, None
        return _RAW, b"".join(parts), None

    def _encode_new(
        self, digest: bytes, data: bytes, *, delta: bool = True
    ) -> tuple[int, bytes, bytes | None]:
        with self._lock:
            if digest in self._recent:  # on the tape already: INSERT OR IGNORE keeps its row
                return _RAW, data, None
        return self._encode(data, digest, delta=delta)

    def _insert_exchange(
        self, db: sqlite3.Connection, exchange: Exchange, draws: list[Draw]
    ) -> None:
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
            # In the order written, so that a delta's base was decoded (and kept) just before.
            for digest, codec, data, base, size in self._db.execute(
                f"SELECT hash, codec, data, {self._base_column}, size FROM blob ORDER BY rowid"
            ).fetchall():
                try:
                    row = self._stored_row(codec, data, base, size)
                    body = self._decode(digest, row, check=False)
                except TapeError as exc:  # a damaged frame or chain, reported not raised
                    problems.append(f"blob {digest.hex()[:12]}: cannot be read ({exc})")
                    continue
                if len(body) != size or blob_hash(body) != digest:
                    problems.append(f"blob {digest.hex()[:12]}: content does not match its hash")
                elif codec in _DELTAS or size >= _DELTA_MIN:
                    self._remember(digest, body)
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


def _pack_delta(prefix: int, suffix: int, middle: bytes) -> bytes:
    """A body as its base's first ``prefix`` bytes, ``middle``, and the base's last ``suffix``
    (the base's hash is the row's ``base`` column)."""
    return _DELTA_HEADER.pack(prefix, suffix) + middle


def _add_range(ranges: list[tuple[int, int, int]], at: int, start: int, end: int) -> None:
    """Append a wanted range, merged with the previous one when both ends meet."""
    if ranges:
        last_at, last_start, last_end = ranges[-1]
        if last_end == start and last_at + last_end - last_start == at:
            ranges[-1] = (last_at, last_start, end)
            return
    ranges.append((at, start, end))


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix, in one pass in C: the two prefixes read as
    big-endian integers differ first in the highest set bit of their XOR."""
    n = min(len(a), len(b))
    x = int.from_bytes(a[:n], "big") ^ int.from_bytes(b[:n], "big")
    return n if x == 0 else n - 1 - (x.bit_length() - 1) // 8


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix, at most ``limit`` (the tails read little-endian)."""
    n = min(limit, len(a), len(b))
    if n <= 0:
        return 0
    x = int.from_bytes(a[len(a) - n :], "little") ^ int.from_bytes(b[len(b) - n :], "little")
    return n if x == 0 else n - 1 - (x.bit_length() - 1) // 8


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
