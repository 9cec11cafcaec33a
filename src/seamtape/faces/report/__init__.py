"""The HTML report and the live UI: one page (``web/``) over one JSON document of a tape.

``write_report`` makes the self-contained file that ``seamtape report`` writes;
``serve`` (in ``seamtape.faces.report.live``) serves the same page over HTTP on 127.0.0.1,
updating while runs are recorded, and forks from it when given an agent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._data import (
    DATA_VERSION,
    LINT_SEVERITIES,
    DiffSpec,
    ReportError,
    StepCache,
    load_blame,
    load_lint,
    report_data,
)
from ._html import asset_dir, render_page, script_json

__all__ = [
    "DATA_VERSION",
    "LINT_SEVERITIES",
    "DiffSpec",
    "ReportError",
    "StepCache",
    "asset_dir",
    "load_blame",
    "load_lint",
    "render_page",
    "render_report",
    "report_data",
    "script_json",
    "write_report",
]


def render_report(
    tapes: Sequence[str | os.PathLike[str]],
    *,
    run: str | None = None,
    blame: dict[str, Any] | None = None,
    lint: list[dict[str, Any]] | None = None,
    diffs: Sequence[DiffSpec] = (),
) -> str:
    """The report as one HTML document (see ``report_data`` for the arguments)."""
    data = report_data(tapes, run=run, blame=blame, lint=lint, diffs=diffs)
    title = f"seamtape · {os.path.basename(os.fspath(tapes[0]))}"
    return render_page(data, config={"mode": "file"}, title=title)


def write_report(out: str | os.PathLike[str], html: str) -> Path:
    """Write the page to ``out`` atomically: a reader never sees half a file, and a failure
    leaves what was there before."""
    target = Path(out)
    if target.is_dir():
        raise ReportError(f"{target}: is a directory; give the report's file name")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such directory")
    fd, temp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(temp, 0o666 & ~umask)  # as an ordinary file would be, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target
