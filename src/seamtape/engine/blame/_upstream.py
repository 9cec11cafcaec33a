"""Where blame's live calls go: one rule, said out loud."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

from seamtape._errors import SeamtapeError
from seamtape.tape import Tape

from ._blame import parent_run

__all__ = ["live_upstream"]


@contextlib.contextmanager
def live_upstream(
    tape: str | os.PathLike[str],
    run: str | None,
    upstream: str | None = None,
    sim_policy: str | None = None,
) -> Iterator[tuple[str | None, str]]:
    """The base URL blame's live calls go to while the block runs, and a line that says where.

    ``upstream`` if given; else the embedded simulator, started for the block with the policy
    the run recorded (``sim_policy`` on the run) or, failing that, the one passed here, at the
    run's URL path; else the upstream the run was recorded against.
    """
    with Tape(tape) as t:
        parent = parent_run(t, run)
    recorded = parent.upstream
    if upstream is not None:
        yield upstream, f"live calls went to {upstream} (--upstream)"
        return
    policy_spec = getattr(parent, "sim_policy", None) or sim_policy
    if policy_spec is None:
        if not recorded:
            raise SeamtapeError(
                f"run {parent.id} records no upstream: pass --upstream URL, or --sim-policy to "
                "answer live calls with the embedded simulator"
            )
        yield (
            None,
            f"live calls went to {recorded}, the upstream run {parent.id} was recorded against",
        )
        return
    # Lazy: blame's workers import this package; only the parent process starts a simulator.
    from seamtape import sim  # noqa: PLC0415

    try:
        policy = sim.policy_from_spec(policy_spec)
    except (ValueError, OSError, KeyError) as exc:
        raise SeamtapeError(f"simulator policy {policy_spec!r}: {exc}") from None
    whose = "the run's recorded" if getattr(parent, "sim_policy", None) else "the given"
    with sim.serve(policy) as server:
        url = server.base_url + (urlsplit(recorded).path.rstrip("/") if recorded else "")
        yield (
            url,
            f"live calls went to the embedded simulator at {url}, with {whose} policy {policy_spec!r}",
        )
