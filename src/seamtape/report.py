"""What a person reads about a tape: tables for the terminal."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from .tape import Tape

__all__ = ["show_tape"]


def show_tape(path: str | os.PathLike[str], *, run: str | None = None, console: Any) -> None:
    """Print each run of the tape (or only ``run``) with its exchanges."""
    from rich.table import Table

    with Tape(path) as tape:
        runs = [tape.run(run)] if run else tape.runs()
        if not runs:
            console.print(f"{path}: no runs")
        for info in runs:
            created = datetime.fromtimestamp(info.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
            lineage = f", forked from {info.parent} at step {info.fork_step}" if info.parent else ""
            title = (
                f"run {info.id}"
                + (f" ({info.name})" if info.name else "")
                + f" · {info.status} · {created} UTC{lineage}"
            )
            table = Table(title=title, title_justify="left")
            for name, justify in [
                ("step", "right"),
                ("method", "left"),
                ("url", "left"),
                ("status", "right"),
                ("req bytes", "right"),
                ("resp bytes", "right"),
                ("ms", "right"),
            ]:
                table.add_column(name, justify=justify)  # type: ignore[arg-type]
            sizes = _sizes(tape, info.id)
            for ex in tape.exchanges(info.id):
                status = str(ex.status) if ex.status else f"error: {(ex.error or {}).get('type')}"
                table.add_row(
                    str(ex.seq),
                    ex.method,
                    ex.url,
                    status,
                    str(sizes.get(ex.request_body, "?")),
                    str(sizes.get(ex.response_body, "?")),
                    f"{ex.duration_ms:.0f}",
                )
            console.print(table)
            digest = (info.digest or "-")[:16]
            console.print(f"  {info.exchanges} exchanges, {info.draws} draws, digest {digest}\n")


def _sizes(tape: Tape, run_id: str) -> dict[bytes, int]:
    return tape.blob_sizes(run_id)
