"""Running validate or bench as a committed experiment: write its report, or with ``check``
re-run the committed report's settings and say what got worse, writing nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seamtape._errors import SeamtapeError
from seamtape.proof import bench, validate

__all__ = ["ExperimentOutcome", "run_experiment"]


@dataclass
class ExperimentOutcome:
    doc: dict[str, Any]
    checked_against: Path | None = None  # the committed report, when checking
    problems: list[str] = field(default_factory=list)  # what fell below it
    written: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_experiment(
    name: str,
    config: Any,
    *,
    out: Path | None,
    check: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExperimentOutcome:
    """Run the ``validate`` or ``bench`` experiment with ``config``.

    With ``check``, the committed ``out/<name>.json`` supplies the settings and the fresh
    results are compared with it; nothing is written. Without ``out`` nothing is written.
    """
    kinds: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = {
        "validate": (validate.run_validate, validate.check, validate.markdown),
        "bench": (bench.run_bench, bench.check, bench.markdown),
    }
    run, compare, markdown = kinds[name]
    if check and out is None:
        raise SeamtapeError("check needs the folder of the committed report (out=)")
    report = out / f"{name}.json" if out is not None else None
    committed = _committed(report) if check and report is not None else None
    if committed is not None:
        config = type(config)(**committed["config"])
        if progress:
            progress(f"checking against {report}: {config.command()}")
    doc = run(config, progress=progress)
    if committed is not None:
        return ExperimentOutcome(doc, report, compare(doc, committed))
    if out is None or report is None:
        return ExperimentOutcome(doc)
    validate.save(doc, out, markdown, name)
    return ExperimentOutcome(doc, written=[report, out / "blame.md"])


def _committed(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SeamtapeError(f"cannot read the committed report {path}: {exc}") from None
