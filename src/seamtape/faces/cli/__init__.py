"""The ``seamtape`` command line: each command is a thin face over a library call.

One module per command group; imports happen inside the commands so that
``seamtape --help`` starts fast.
Exit codes: 0 success, 1 a divergence or failed check, 2 a usage or file error, 3 the agent
raised or its upstream could not be reached.
"""

from __future__ import annotations

import importlib
import sys

from ._app import EXIT_AGENT, EXIT_DIVERGED, EXIT_USAGE, app, new_console

# Each group registers its commands on ``app`` when imported, in this order in ``--help``.
COMMAND_GROUPS = ("runs", "checks", "blame", "lint", "report", "proxy", "otel", "store")
for _group in COMMAND_GROUPS:
    importlib.import_module(f"{__name__}.{_group}")

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: turn the user's mistakes into one clear line and a distinct exit code."""
    from seamtape._errors import AgentRaisedError, DivergenceError, SeamtapeError, UpstreamError

    try:
        app()
    except DivergenceError as exc:
        new_console(stderr=True).print(str(exc), markup=False, soft_wrap=True)
        sys.exit(EXIT_DIVERGED)
    except (AgentRaisedError, UpstreamError) as exc:
        new_console(stderr=True).print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(EXIT_AGENT)
    except SeamtapeError as exc:
        new_console(stderr=True).print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
