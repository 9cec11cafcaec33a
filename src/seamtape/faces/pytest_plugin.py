"""The pytest plugin: a recorded agent run replays in every test run, and fails loudly.

It maps pytest's world onto ``seamtape.record`` and ``seamtape.replay`` and holds no
recording logic of its own:

- ``@pytest.mark.tape(path=None, *, run=None, partial=False, intercept=False)`` and the
  ``tape`` fixture, which yields an open ``Session``;
- the tape's default path, ``<rootdir>/<tape_dir>/<module>/<test name>.tape``, with
  ``tape_dir`` (default ``tests/tapes``) set in ``[tool.seamtape]`` of pyproject.toml;
- ``--tape-mode=none|once|new|all|rewrite``; every write goes to a copy aside, swapped in
  only when the test passes;
- ``--block-network`` and ``--allowed-hosts`` while a tape replays;
- ``--tape-upstream`` and the ``tape_upstream`` fixture: where a recording's live requests
  go (by default a simulator started in-process on 127.0.0.1);
- a divergence reported as the test's failure: step, request and JSON diff, no traceback
  from inside an SDK.

Registered through the ``pytest11`` entry point; a test that uses neither the marker nor
the fixture never meets it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from seamtape._session import Session
    from seamtape.tape import Rewrite

__all__ = ["MODES", "default_tape_path"]

MODES = ("none", "once", "new", "all", "rewrite")
DEFAULT_TAPE_DIR = "tests/tapes"
_MARKER_OPTIONS = {"path", "run", "partial", "intercept", "guards"}
_SETTINGS = pytest.StashKey["_Settings"]()
_USE = pytest.StashKey["_TapeUse"]()


# -- options and settings ----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seamtape", "seamtape: record and replay agent runs on tapes")
    group.addoption(
        "--tape-mode",
        choices=MODES,
        default=None,
        help="none (default): replay, fail on a missing tape or an unmatched request; "
        "once: record a missing tape; new: replay what matches and record the rest as a "
        "new run; all: record a new run; rewrite: record the tape afresh.",
    )
    group.addoption(
        "--tape-upstream",
        default=None,
        metavar="URL",
        help="Base URL that recordings send live requests to "
        "(default: a seamtape simulator started in-process on 127.0.0.1).",
    )
    group.addoption(
        "--tape-guard",
        action="append",
        default=None,
        metavar="SPEC",
        help="Guard recordings with a lint rule setting (RULE.PARAM=VALUE, e.g. "
        "budget-cost.max_usd=0.05) or a lint configuration file; repeatable. A critical "
        "finding stops the run before its request is sent, and fails the test.",
    )
    # pytest-recording has the same two options with the same meaning: share them.
    with contextlib.suppress(ValueError):
        group.addoption(
            "--block-network",
            action="store_true",
            default=None,
            help="Block real sockets while a tape replays.",
        )
    with contextlib.suppress(ValueError):
        group.addoption(
            "--allowed-hosts",
            default=None,
            metavar="HOSTS",
            help="Comma-separated hosts (or regular expressions) that --block-network allows.",
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tape(path=None, *, run=None, partial=False, intercept=False, guards=None): record or "
        "replay this test's agent run on a seamtape tape (see the `tape` fixture); guards "
        "(a lint configuration mapping or file) stop a recording that breaks a rule",
    )


@dataclass(frozen=True)
class _Settings:
    mode: str
    tape_dir: Path
    upstream: str | None
    block_network: bool
    allowed_hosts: tuple[str, ...]


def _settings(config: pytest.Config) -> _Settings:
    """The command line over ``[tool.seamtape]`` over the defaults, read once per session."""
    found = config.stash.get(_SETTINGS, None)
    if found is not None:
        return found
    table = _pyproject_table(config)
    tape_dir = table.get("tape_dir", DEFAULT_TAPE_DIR)
    upstream = config.getoption("tape_upstream") or table.get("upstream")
    block = config.getoption("block_network", None)
    block = bool(table.get("block_network", False)) if block is None else bool(block)
    hosts: Any = config.getoption("allowed_hosts", None)
    hosts = hosts.split(",") if hosts is not None else table.get("allowed_hosts", [])
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    if not isinstance(tape_dir, str) or not all(isinstance(h, str) for h in hosts):
        raise pytest.UsageError(
            "[tool.seamtape]: tape_dir must be a string and allowed_hosts a list of strings"
        )
    found = _Settings(
        mode=config.getoption("tape_mode") or "none",
        tape_dir=config.rootpath / tape_dir,
        upstream=upstream if isinstance(upstream, str) and upstream else None,
        block_network=block,
        allowed_hosts=tuple(h.strip() for h in hosts if h.strip()),
    )
    config.stash[_SETTINGS] = found
    return found


def _pyproject_table(config: pytest.Config) -> dict[str, Any]:
    import tomllib

    inipath = config.inipath
    path = inipath if inipath and inipath.name == "pyproject.toml" else None
    path = path or config.rootpath / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"{path}: cannot read [tool.seamtape]: {exc}") from None
    table = doc.get("tool", {}).get("seamtape", {})
    return table if isinstance(table, dict) else {}


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tape_mode(pytestconfig: pytest.Config) -> str:
    """The tape mode of this test session: ``none`` unless ``--tape-mode`` says otherwise."""
    return _settings(pytestconfig).mode


@pytest.fixture
def tape_upstream(pytestconfig: pytest.Config) -> Iterator[str]:
    """The base URL a recording's live requests go to; only set up when a test records.

    ``--tape-upstream URL`` (or ``upstream`` in ``[tool.seamtape]``) when given; otherwise a
    seamtape simulator on 127.0.0.1 with its default policy, for the duration of the test.
    Override this fixture to record against your own simulator policy or a real provider.
    The URL is stored on the run, so ``tape.upstream`` gives the same one on replay.
    """
    configured = _settings(pytestconfig).upstream
    if configured:
        yield configured
        return
    from seamtape import sim

    with sim.serve() as server:
        yield server.base_url


@pytest.fixture
def tape(request: pytest.FixtureRequest, tape_mode: str) -> Iterator[Session]:
    """An open seamtape ``Session`` for this test: a replay of its tape, or a recording.

    Build the agent's clients from it (``anthropic.Anthropic(base_url=tape.upstream,
    http_client=tape.httpx2_client())``), read time, ids and randomness from ``tape.nondet``,
    and optionally set ``tape.result`` to have the agent's result compared on replay.
    """
    settings = _settings(request.config)
    options = _marker_options(request)
    path = _resolve(request, options.get("path"), settings)
    use = _open(request, path, tape_mode, options, settings)
    request.node.stash[_USE] = use
    try:
        yield use.session
    finally:
        try:
            # The call phase closed the session; this covers a test that never got there.
            use.close(_NotRun())
        finally:
            use.settle()


# -- where the tape lives ----------------------------------------------------------------


def default_tape_path(tape_dir: Path, module: Path, test_name: str) -> Path:
    """``<tape_dir>/<module stem>/<test name>.tape``, with characters files cannot hold
    replaced (a class's tests are named ``Class.test``)."""
    safe = "".join("-" if ch in "<>:\"/\\|?*'%" else ch for ch in test_name)
    return tape_dir / module.stem / f"{safe}.tape"


def _test_name(request: pytest.FixtureRequest) -> str:
    name = request.node.name
    return f"{request.cls.__name__}.{name}" if request.cls is not None else name


def _resolve(request: pytest.FixtureRequest, given: Any, settings: _Settings) -> Path:
    default = default_tape_path(settings.tape_dir, request.node.path, _test_name(request))
    if given is None:
        return default
    path = Path(os.fspath(given))
    # A relative path names a tape beside the test's own, as a cassette name does.
    return path if path.is_absolute() else default.parent / path


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("tape")
    if marker is None:
        return {}
    if len(marker.args) > 1:
        pytest.fail(
            "@pytest.mark.tape takes one positional argument at most: the path", pytrace=False
        )
    options = dict(marker.kwargs)
    if marker.args:
        options["path"] = marker.args[0]
    unknown = sorted(set(options) - _MARKER_OPTIONS)
    if unknown:
        pytest.fail(
            f"@pytest.mark.tape: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_MARKER_OPTIONS))}",
            pytrace=False,
        )
    return options


@pytest.fixture(autouse=True)
def _seamtape_marker(request: pytest.FixtureRequest) -> None:
    """A test marked ``@pytest.mark.tape`` gets its tape even if it does not ask for the
    fixture (an agent that builds its own clients, with ``intercept=True``)."""
    if "tape" not in request.fixturenames and request.node.get_closest_marker("tape"):
        request.getfixturevalue("tape")


# -- opening, closing and settling a tape ------------------------------------------------


class _NotRun(Exception):
    """Stands for the test's outcome when it never reached its call phase."""


@dataclass
class _TapeUse:
    """One test's tape: the session, and where its writes go until the test has passed."""

    path: Path
    session: Session
    rewrite: Rewrite | None = None  # the copy being written; None for a pure replay
    passed: bool = False
    closed: bool = False
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def close(self, exc: BaseException | None) -> None:
        """End the session; a divergence it finds is raised in place of ``exc``."""
        if self.closed:
            return
        self.closed = True
        try:
            self.session.__exit__(
                type(exc) if exc else None, exc, exc.__traceback__ if exc else None
            )
        finally:
            self.stack.close()

    def settle(self) -> None:
        """Swap a recording in when the test passed and it holds something new; else drop it."""
        if self.rewrite is None:
            return
        keep = self.passed and (self.session.mode != "fork" or _extended(self.session))
        if keep:
            self.rewrite.commit()
        else:
            self.rewrite.discard()


def _extended(session: Session) -> bool:
    """Whether a ``new``-mode run differs from the run it extended, in bytes or in result."""
    parent = session.recorded
    if parent is None or parent.digest != session.digest:
        return True
    if session.result is None:
        return False
    return not parent.has_result or _json(parent.result) != _json(session.result)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _open(
    request: pytest.FixtureRequest,
    path: Path,
    mode: str,
    options: dict[str, Any],
    settings: _Settings,
) -> _TapeUse:
    """Open the session the mode asks for: a replay of the tape, or a recording aside."""
    from seamtape._errors import SeamtapeError
    from seamtape.tape import Rewrite

    exists = path.is_file()
    if mode == "none" and not exists:
        pytest.fail(
            f"seamtape: no tape at {_relative(path, request.config)} (--tape-mode=none only "
            f"replays).\nRecord it once with: pytest --tape-mode=once {request.node.nodeid}",
            pytrace=False,
        )
    replaying = exists and mode in ("none", "once")
    rewrite = None
    try:
        if not replaying:
            rewrite = Rewrite(path, copy=mode in ("new", "all"))
        session = _session(request, path, rewrite, exists, mode, options)
        session.__enter__()
    except BaseException as exc:
        if rewrite is not None:
            rewrite.discard()
        if isinstance(exc, SeamtapeError):
            pytest.fail(f"seamtape: {exc}", pytrace=False)
        raise
    use = _TapeUse(path, session, rewrite=rewrite)
    if replaying and settings.block_network:
        from seamtape._network import blocking

        use.stack.enter_context(blocking(settings.allowed_hosts))
    return use


def _session(
    request: pytest.FixtureRequest,
    path: Path,
    rewrite: Rewrite | None,
    exists: bool,
    mode: str,
    options: dict[str, Any],
) -> Session:
    from seamtape._session import extend, record, replay

    run, intercept = options.get("run"), bool(options.get("intercept", False))
    if rewrite is None:
        return replay(path, run=run, intercept=intercept, partial=bool(options.get("partial")))
    upstream = request.getfixturevalue("tape_upstream")
    if exists and mode == "new":
        return extend(
            rewrite.scratch,
            run=run,
            name=f"{request.node.nodeid} (new)",
            intercept=intercept,
            upstream=upstream,
        )
    guards = options.get("guards")
    specs = request.config.getoption("tape_guard", None)
    if guards is None and specs:
        from seamtape.lenses.lint import guards_from_specs

        guards = guards_from_specs(specs)
    return record(
        rewrite.scratch,
        name=request.node.nodeid,
        intercept=intercept,
        upstream=upstream,
        guards=guards,
    )


# -- running the test and reporting it ---------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Close the tape inside the call phase, so that what the session finds at its end
    (requests the recording made and the test did not, a different result) fails the test
    itself rather than its teardown."""
    use = item.stash.get(_USE, None)
    if use is None:
        return (yield)
    try:
        result = yield
    except BaseException as exc:
        use.close(exc)
        raise
    use.close(None)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    use = item.stash.get(_USE, None)
    if use is None or report.when != "call":
        return report
    use.passed = report.passed
    excinfo = call.excinfo
    style = item.config.getoption("tbstyle")
    from seamtape._errors import DivergenceError

    if (
        report.failed
        and excinfo is not None
        and isinstance(excinfo.value, DivergenceError)
        and style not in ("no", "native")
    ):
        report.longrepr = _DivergenceRepr(item, use, excinfo, short=style == "line")
    return report


@dataclass
class _Crash:
    path: str
    lineno: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"


class _DivergenceRepr:
    """A divergence as pytest shows a failure: what differs and where the test was, with no
    frames from inside the SDK that carried the request."""

    def __init__(
        self,
        item: pytest.Item,
        use: _TapeUse,
        excinfo: pytest.ExceptionInfo[Any],
        *,
        short: bool = False,
    ) -> None:
        error = excinfo.value
        frame = _test_frame(item, excinfo)
        if frame is None:
            path, lineno, source = item.location[0], (item.location[1] or 0) + 1, ""
        else:
            path, lineno, source = frame
        self.reprcrash = _Crash(path, lineno, str(error).splitlines()[0])
        if short:
            self.text = str(self.reprcrash)
            return
        lines = [f"seamtape: the replay of {_relative(use.path, item.config)} diverged", str(error)]
        if error.path:
            lines += ["", f"JSON diff at {error.path}:"]
            lines += [f"- {line}" for line in _pretty(error.recorded)]
            lines += [f"+ {line}" for line in _pretty(error.new)]
        if source:
            lines += ["", f"{path}:{lineno}: in {item.name}", f"    {source}"]
        lines += [
            "",
            "If the change is intended: --tape-mode=new records the new requests as a new run, "
            "--tape-mode=rewrite records the tape afresh.",
        ]
        self.text = "\n".join(lines)

    def toterminal(self, tw: Any) -> None:
        for line in self.text.splitlines():
            tw.line(line, red=line.startswith(("divergence", "-", "seamtape")))

    def __str__(self) -> str:
        return self.text


def _pretty(value: Any, limit: int = 40) -> list[str]:
    if isinstance(value, bytes):
        text = repr(value)
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    lines = text.splitlines() or [""]
    return lines if len(lines) <= limit else [*lines[:limit], f"… ({len(lines) - limit} more)"]


def _relative(path: Path, config: pytest.Config) -> str:
    try:
        return str(path.relative_to(config.rootpath))
    except ValueError:
        return str(path)


def _test_frame(
    item: pytest.Item, excinfo: pytest.ExceptionInfo[Any]
) -> tuple[str, int, str] | None:
    """Where the test's own code was when it diverged: its innermost frame in the test file,
    as (path, line, source)."""
    for entry in reversed(excinfo.traceback):
        if Path(entry.path) == item.path:
            path = _relative(item.path, item.config)
            return path, entry.lineno + 1, str(entry.statement).strip()
    return None
