"""The tape: one SQLite file of runs, exchanges and draws, with bodies stored by sha256.

This package owns everything that touches the file: the schema and its migrations, the
blob store, the digest (a hash chain over a run), verification, and maintenance that
rewrites a tape atomically.
"""

from ._digest import Digest, exchange_hash
from ._jsonl import ImportReport, export_runs, import_runs, write_export
from ._maintenance import (
    Rewrite,
    copy_tape,
    leftover_recordings,
    remove_leftovers,
    remove_tape,
)
from ._store import GcReport, MergeReport, PruneReport, gc, merge, prune, tape_bytes
from ._tape import (
    SCHEMA_VERSION,
    Draw,
    Exchange,
    Record,
    RunInfo,
    Tape,
    blob_hash,
    chunks_hash,
)
from ._verify import VerifyReport, run_digest, verify

__all__ = [
    "SCHEMA_VERSION",
    "Digest",
    "Draw",
    "Exchange",
    "GcReport",
    "ImportReport",
    "MergeReport",
    "PruneReport",
    "Record",
    "Rewrite",
    "RunInfo",
    "Tape",
    "VerifyReport",
    "blob_hash",
    "chunks_hash",
    "copy_tape",
    "exchange_hash",
    "export_runs",
    "gc",
    "import_runs",
    "leftover_recordings",
    "merge",
    "prune",
    "remove_leftovers",
    "remove_tape",
    "run_digest",
    "tape_bytes",
    "verify",
    "write_export",
]
