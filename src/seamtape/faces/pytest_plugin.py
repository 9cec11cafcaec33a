"""The pytest plugin: a recorded agent run replays in every test run, and fails loudly.

It maps pytest's world onto ``seamtape.record`` and ``seamtape.replay`` and holds no
recording logic of its own:

- ``@pytest.mark.tape(path=None, *extra_tapes, run=None, partial=False, intercept=False,
  **tape_config)`` and the ``tape`` fixture, which yields an open ``Session``; extra tapes
  are read-only, served in any order;
- the ``tape_config`` fixture (pytest-recording's ``vcr_config``): ``before_record_request``,
  ``before_record_response``, ``ignore_paths``, ``allow_playback_repeats``;
- the tape's default path, ``<rootdir>/<tape_dir>/<module path from the rootdir>/<test
  name>.tape``; settings from the command line, pytest's ini options (``tape_dir``,
  ``tape_mode``, ...) or ``[tool.seamtape]`` of pyproject.toml, validated;
- ``--tape-mode=none|once|new|all|rewrite`` (``new_episodes`` is ``new``); every write goes to
  a copy aside, swapped in only when the test passes ("tape not saved" otherwise);
- ``--block-network`` and ``--allowed-hosts`` while a tape replays;
- ``--tape-upstream`` and the ``tape_upstream`` fixture: where a recording's live requests
  go: the URL named, else a simulator on 127.0.0.1 started with the policy the tape's run
  recorded (or ``tape_sim_policy``);
- a divergence reported as the test's failure: run, step, request and JSON diff, no traceback
  from inside an SDK; a summary of what each test replayed or recorded, and where live
  requests went.

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
    from seamtape._cursor import Matching
    from seamtape._session import Session
    from seamtape.tape import Rewrite

__all__ = ["MODES", "default_tape_path"]

MODES = ("none", "once", "new", "all", "rewrite")
ALIASES = {"new_episodes": "new"}  # pytest-recording's and vcrpy's name for the same mode
DEFAULT_TAPE_DIR = "tests/tapes"
_MARKER_OPTIONS = {"path", "run", "partial", "intercept", "guards"}
_CONFIG_OPTIONS = {
    "before_record_request",
    "before_record_response",
    "ignore_paths",
    "allow_playback_repeats",
}
# [tool.seamtape] keys, each the ini option ``tape_<key>`` or ``<key>`` of the same meaning.
_TABLE_KEYS = {
    "tape_dir": "tape_dir",
    "mode": "tape_mode",
    "upstream": "tape_upstream",
    "sim_policy": "tape_sim_policy",
    "block_network": "tape_block_network",
    "allowed_hosts": "tape_allowed_hosts",
}
_SETTINGS = pytest.StashKey["_Settings"]()
_USE = pytest.StashKey["_TapeUse"]()
_LIVE = pytest.StashKey["tuple[str, str | None]"]()  # the test's (upstream, simulator policy)
_NOTES = pytest.StashKey["list[tuple[str, str]]"]()  # (kind, line) for the terminal summary


# -- options and settings ----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seamtape", "seamtape: record and replay agent runs on tapes")
    group.addoption(
        "--tape-mode",
        choices=(*MODES, *ALIASES),
        default=None,
        help="none (default): replay, fail on a missing tape or an unmatched request; "
        "once: record a missing tape; new (or new_episodes): replay what matches and record "
        "the rest as a new run; all: record a new run; rewrite: record the tape afresh.",
    )
    group.addoption(
        "--tape-upstream",
        default=None,
        metavar="URL",
        help="Base URL that recordings send live requests to (default: a seamtape "
        "simulator on 127.0.0.1, with the policy the tape's run recorded).",
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
    # default=None: an option the ini file does not set leaves [tool.seamtape] in charge.
    for name, help_text, kind in [
        ("tape_dir", f"seamtape: folder of tapes, from the rootdir ({DEFAULT_TAPE_DIR})", None),
        ("tape_mode", f"seamtape: the default --tape-mode ({', '.join(MODES)})", None),
        ("tape_upstream", "seamtape: base URL recordings send live requests to", None),
        ("tape_sim_policy", "seamtape: simulator policy for recordings (stochastic:seed=3)", None),
        ("tape_block_network", "seamtape: block real sockets while replaying", "bool"),
        ("tape_allowed_hosts", "seamtape: hosts --block-network allows", "args"),
    ]:
        parser.addini(name, help_text, type=kind, default=None)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tape(path=None, *extra_tapes, run=None, partial=False, intercept=False, "
        "guards=None, **tape_config): record or replay this test's agent run on a seamtape "
        "tape (see the `tape` fixture); guards (a lint configuration mapping or file) stop "
        "a recording that breaks a rule",
    )
    config.stash[_NOTES] = []
    _settings(config)  # a bad setting fails the session before any test runs


@dataclass(frozen=True)
class _Settings:
    mode: str
    tape_dir: Path
    upstream: str | None
    sim_policy: str | None
    block_network: bool
    allowed_hosts: tuple[str, ...]


def _settings(config: pytest.Config) -> _Settings:
    """The command line over pytest's ini options over ``[tool.seamtape]`` over the
    defaults, read and validated once per session."""
    found = config.stash.get(_SETTINGS, None)
    if found is not None:
        return found
    table = _pyproject_table(config)

    def setting(key: str) -> Any:
        try:
            value = config.getini(_TABLE_KEYS[key])
        except ValueError as exc:
            raise pytest.UsageError(f"seamtape: ini option {_TABLE_KEYS[key]}: {exc}") from None
        return table.get(key) if value is None else value

    mode = config.getoption("tape_mode") or setting("mode") or "none"
    mode = ALIASES.get(mode, mode)
    if mode not in MODES:
        raise pytest.UsageError(
            f"seamtape: tape mode {mode!r} is not one of {', '.join((*MODES, *ALIASES))}"
        )
    tape_dir = setting("tape_dir") or DEFAULT_TAPE_DIR
    upstream = config.getoption("tape_upstream") or setting("upstream")
    sim_policy = setting("sim_policy")
    if sim_policy:
        from seamtape import sim

        try:
            sim.policy_from_spec(sim_policy)
        except (ValueError, OSError, KeyError, TypeError) as exc:
            raise pytest.UsageError(f"seamtape: sim_policy {sim_policy!r}: {exc}") from None
    block = config.getoption("block_network", None)
    block = _boolean(setting("block_network"), "block_network") if block is None else bool(block)
    hosts: Any = config.getoption("allowed_hosts", None)
    hosts = hosts.split(",") if hosts is not None else setting("allowed_hosts") or []
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    for key, value, ok in [
        ("tape_dir", tape_dir, isinstance(tape_dir, str)),
        ("upstream", upstream, upstream is None or isinstance(upstream, str)),
        ("sim_policy", sim_policy, sim_policy is None or isinstance(sim_policy, str)),
        ("allowed_hosts", hosts, all(isinstance(h, str) for h in hosts)),
    ]:
        if not ok:
            kind = "a list of strings" if key == "allowed_hosts" else "a string"
            raise pytest.UsageError(f"seamtape: {key} must be {kind}, not {value!r}")
    found = _Settings(
        mode=mode,
        tape_dir=config.rootpath / tape_dir,
        upstream=upstream or None,
        sim_policy=sim_policy or None,
        block_network=block,
        allowed_hosts=tuple(h.strip() for h in hosts if h.strip()),
    )
    config.stash[_SETTINGS] = found
    return found


def _boolean(value: Any, key: str) -> bool:
    """A boolean setting: TOML's true/false, or the strings pytest's ini files accept."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "off", "0"):
        return False
    raise pytest.UsageError(f"seamtape: {key} must be true or false, not {value!r}")


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
    if not isinstance(table, dict):
        raise pytest.UsageError(f"{path}: [tool.seamtape] must be a table")
    unknown = sorted(set(table) - set(_TABLE_KEYS))
    if unknown:
        raise pytest.UsageError(
            f"{path}: [tool.seamtape] has unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_TABLE_KEYS))}"
        )
    return table


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tape_mode(pytestconfig: pytest.Config) -> str:
    """The tape mode of this test session: ``none`` unless ``--tape-mode`` (or the
    ``tape_mode`` setting) says otherwise."""
    return _settings(pytestconfig).mode


@pytest.fixture
def tape_config() -> dict[str, Any]:
    """Options for every tape of the tests that see this fixture; override it in a conftest
    (as pytest-recording's ``vcr_config``). A marker's keyword arguments win over it.

    - ``before_record_request(request) -> request``: change a ``seamtape.TapeRequest``
      (method, url, headers, body) before it is stored and before it is matched on replay,
      e.g. to drop a field that changes on every run; the live request is sent unchanged;
    - ``before_record_response(response) -> response``: change a ``seamtape.TapeResponse``
      (status, headers, body) before it is stored; replays serve the stored one;
    - ``ignore_paths``: JSON paths of request bodies that matching leaves out
      (``$.metadata.user_id``, ``$.messages[*].id``): an escape hatch beside the strict default;
    - ``allow_playback_repeats``: a recorded exchange may answer the same request again.
    """
    return {}


@pytest.fixture
def tape_upstream(request: pytest.FixtureRequest, tape_mode: str) -> Iterator[str]:
    """The base URL a recording's live requests go to; only set up when a test records.

    One rule, as for ``seamtape fork``: ``--tape-upstream URL`` (or the ``tape_upstream``
    setting) when given; otherwise a seamtape simulator on 127.0.0.1 started with the policy
    the tape's recorded run stored (``tape_sim_policy`` when set, else the default policy for
    a new tape). Override this fixture to record against a real provider or your own server.
    The URL is stored on the run, so ``tape.upstream`` gives the same one on replay.
    """
    settings = _settings(request.config)
    if settings.upstream:
        request.node.stash[_LIVE] = (settings.upstream, None)
        yield settings.upstream
        return
    from seamtape import sim

    spec = settings.sim_policy or _recorded_policy(request, settings) or "stochastic"
    policy = sim.policy_from_spec(spec)
    with sim.serve(policy) as server:
        request.node.stash[_LIVE] = (server.base_url, sim.policy_spec(policy) or spec)
        yield server.base_url


def _recorded_policy(request: pytest.FixtureRequest, settings: _Settings) -> str | None:
    """The simulator policy of the run this test replays, when its tape has one."""
    from seamtape._errors import SeamtapeError
    from seamtape.tape import Tape

    options = _marker_options(request, {})
    path = _resolve(request, options.get("path"), settings)
    if not path.is_file():
        return None
    try:
        with Tape(path) as tape:
            return tape.run(options.get("run")).sim_policy
    except SeamtapeError:
        return None


@pytest.fixture
def tape(
    request: pytest.FixtureRequest, tape_mode: str, tape_config: dict[str, Any]
) -> Iterator[Session]:
    """An open seamtape ``Session`` for this test: a replay of its tape, or a recording.

    Build the agent's clients from it (``anthropic.Anthropic(base_url=tape.upstream,
    http_client=tape.httpx2_client())``), read time, ids and randomness from ``tape.nondet``,
    and optionally set ``tape.result`` to have the agent's result compared on replay.
    """
    settings = _settings(request.config)
    options = _marker_options(request, tape_config)
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
            use.settle(request.config)


# -- where the tape lives ----------------------------------------------------------------


def default_tape_path(tape_dir: Path, module: Path, test_name: str) -> Path:
    """``<tape_dir>/<module>/<test name>.tape``, where ``module`` is the test module's path
    from the rootdir without ``.py`` (``tests/unit/test_x.py`` and ``tests/e2e/test_x.py``
    get tapes of their own), and characters files cannot hold are replaced (a class's tests
    are named ``Class.test``)."""
    safe = "".join("-" if ch in "<>:\"/\\|?*'%" else ch for ch in test_name)
    return tape_dir / module.with_suffix("") / f"{safe}.tape"


def _module(request: pytest.FixtureRequest) -> Path:
    path = request.node.path
    try:
        return path.relative_to(request.config.rootpath)
    except ValueError:  # a test module outside the rootdir: its name is all there is
        return Path(path.name)


def _test_name(request: pytest.FixtureRequest) -> str:
    name = request.node.name
    return f"{request.cls.__name__}.{name}" if request.cls is not None else name


def _resolve(request: pytest.FixtureRequest, given: Any, settings: _Settings) -> Path:
    default = default_tape_path(settings.tape_dir, _module(request), _test_name(request))
    if given is None:
        return default
    return _beside(default, given)


def _beside(default: Path, given: Any) -> Path:
    path = Path(os.fspath(given))
    # A relative path names a tape beside the test's own, as a cassette name does.
    return path if path.is_absolute() else default.parent / path


def _marker_options(request: pytest.FixtureRequest, config: dict[str, Any]) -> dict[str, Any]:
    """The marker's options over ``tape_config``'s, each checked."""
    unknown = sorted(set(config) - _CONFIG_OPTIONS)
    if unknown:
        pytest.fail(
            f"tape_config: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_CONFIG_OPTIONS))}",
            pytrace=False,
        )
    options = dict(config)
    marker = request.node.get_closest_marker("tape")
    if marker is None:
        return options
    options.update(marker.kwargs)
    if marker.args:
        options["path"] = marker.args[0]
        options["extra_tapes"] = list(marker.args[1:])
    unknown = sorted(set(marker.kwargs) - _MARKER_OPTIONS - _CONFIG_OPTIONS)
    if unknown:
        pytest.fail(
            f"@pytest.mark.tape: unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_MARKER_OPTIONS | _CONFIG_OPTIONS))}",
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
    label: str  # the tape's path from the rootdir
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

    def settle(self, config: pytest.Config) -> None:
        """Swap a recording in when the test passed and it holds something new; else drop
        it, and say which."""
        notes = config.stash.setdefault(_NOTES, [])
        session = self.session
        if self.rewrite is None:
            if not self.passed:
                return  # its failure says what went wrong
            run = session.recorded
            which = f"run {session.run_id}" + (f" ({run.name})" if run and run.name else "")
            notes.append(("replayed", f"replayed {which} of {self.label}"))
            return
        extended = session.mode != "fork" or _extended(session)
        if self.passed and extended:
            self.rewrite.commit()
            live = session.stats["live"]
            notes.append(
                (
                    "recorded",
                    f"recorded run {session.run_id} into {self.label}: {live} live "
                    f"request(s) to {session.describe_live()}",
                )
            )
            return
        self.rewrite.discard()
        if self.passed:
            notes.append(("unchanged", f"{self.label}: nothing new to record, tape unchanged"))
        else:
            notes.append(("not saved", f"tape not saved: {self.label} (the test failed)"))


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
    from seamtape.tape import Rewrite, remove_leftovers

    label = _relative(path, request.config)
    exists = path.is_file()
    if mode == "none" and not exists:
        pytest.fail(
            f"seamtape: no tape at {label} (--tape-mode=none only "
            f"replays).\nRecord it once with: pytest --tape-mode=once {request.node.nodeid}",
            pytrace=False,
        )
    replaying = exists and mode in ("none", "once")
    for leftover in remove_leftovers(path):
        _say(
            request.config,
            f"seamtape: removed {leftover.name}, a recording left unfinished beside "
            f"{path.name} by a stopped run; the tape is as it was before that run",
        )
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
    use = _TapeUse(path, session, label, rewrite=rewrite)
    if replaying and settings.block_network:
        from seamtape._network import blocking

        use.stack.enter_context(blocking(settings.allowed_hosts))
    return use


def _say(config: pytest.Config, line: str) -> None:
    """One line on the terminal (or a warning where there is none, as in an xdist worker)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:
        import warnings

        warnings.warn(line, stacklevel=2)


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
    matching = _matching(path, options)
    if rewrite is None:
        return replay(
            path,
            run=run,
            intercept=intercept,
            partial=bool(options.get("partial")),
            matching=matching,
        )
    upstream = request.getfixturevalue("tape_upstream")
    live_url, sim_policy = request.node.stash.get(_LIVE, (upstream, None))
    if live_url != upstream:  # an overridden tape_upstream fixture: its URL, no policy known
        sim_policy = None
    if exists and mode == "new":
        return extend(
            rewrite.scratch,
            run=run,
            name=f"{request.node.nodeid} (new)",
            intercept=intercept,
            upstream=upstream,
            sim_policy=sim_policy,
            matching=matching,
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
        sim_policy=sim_policy,
        matching=matching,
        guards=guards,
    )


def _matching(path: Path, options: dict[str, Any]) -> Matching:
    """The session's matching options from the marker and ``tape_config``."""
    from seamtape._cursor import Matching

    paths = options.get("ignore_paths") or ()
    if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
        pytest.fail("seamtape: ignore_paths must be a list of JSON paths", pytrace=False)
    for hook in ("before_record_request", "before_record_response"):
        if options.get(hook) is not None and not callable(options[hook]):
            pytest.fail(f"seamtape: {hook} must be callable", pytrace=False)
    extra = [_beside(path, p) for p in options.get("extra_tapes", [])]
    for tape in extra:
        if not tape.is_file():
            pytest.fail(f"seamtape: no extra tape at {tape}", pytrace=False)
    return Matching(
        ignore_paths=tuple(paths),
        repeats=bool(options.get("allow_playback_repeats", False)),
        extra_tapes=tuple(extra),
        before_record_request=options.get("before_record_request"),
        before_record_response=options.get("before_record_response"),
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
    from seamtape._errors import DivergenceError, UpstreamError

    if (
        report.failed
        and excinfo is not None
        and isinstance(excinfo.value, DivergenceError)
        and style not in ("no", "native")
    ):
        report.longrepr = _DivergenceRepr(item, use, excinfo, short=style == "line")
    elif report.failed and excinfo is not None and isinstance(excinfo.value, UpstreamError):
        # One line naming the upstream and the next step, not the SDK's retry traceback.
        message = str(excinfo.value).replace("pass --upstream", "pass --tape-upstream")
        report.longrepr = f"seamtape: {message}"
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """What each tape did: recorded (and where live requests went), not saved, replayed."""
    notes = config.stash.get(_NOTES, [])
    if not notes:
        return
    verbose = config.getoption("verbose") > 0
    shown = [line for kind, line in notes if kind != "replayed" or verbose]
    replayed = sum(1 for kind, _ in notes if kind == "replayed")
    terminalreporter.section("seamtape")
    for line in shown:
        terminalreporter.line(line, red=line.startswith("tape not saved"))
    if replayed and not verbose:
        terminalreporter.line(
            f"replayed {replayed} tape(s), each its latest recorded run (-v names them)"
        )


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
        which = f"run {use.session.run_id}" if use.session.run_id else "its run"
        lines = [f"seamtape: the replay of {use.label} ({which}) diverged", str(error)]
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
