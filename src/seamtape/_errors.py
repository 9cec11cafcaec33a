"""Every error a caller can catch, each with a message that says what to do next.

All derive from :class:`SeamtapeError` except :class:`DivergenceError` (and its subclasses)
and :class:`GuardTripped`, which derive from ``BaseException`` on purpose (see their docstrings).
"""

from __future__ import annotations

from typing import Any


class SeamtapeError(Exception):
    """Base class for seamtape's ordinary errors."""


class TapeError(SeamtapeError):
    """A tape cannot be opened or read: missing, damaged, not a tape, or from a newer seamtape."""


class DamagedTapeError(TapeError):
    """A tape's stored content cannot be trusted: a body that does not match its hash, or
    cannot be decoded (a damaged zstd frame, a delta that is its own base)."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        advice = "run `seamtape verify`"
        super().__init__(message if advice in message else f"{message}: {advice}")
        self.reason = reason or message  # what is wrong, without the path and advice


class UnknownRunError(TapeError):
    """The tape holds no run with that id."""


class CodecError(SeamtapeError, ValueError):
    """Bytes that do not decode as the named wire format, or an api the codecs do not know.

    The message names the api and where decoding stopped, e.g.
    ``"anthropic.messages: stream ended before message_stop (after 3 events)"``.
    """


class AgentError(SeamtapeError):
    """An agent entry point cannot be loaded."""


class AgentRaisedError(SeamtapeError):
    """The agent itself raised while it ran under seamtape; the original is ``__cause__``."""


class UpstreamError(SeamtapeError):
    """The upstream a run's live requests went to could not be reached.

    The message names the URL and the next step; a recording that never reached its upstream
    is not kept on the tape.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ManifestError(SeamtapeError):
    """A replay manifest cannot be used: unreadable, malformed, or naming what does not exist."""


class NotReplayableError(SeamtapeError):
    """A run ingested from a trace: it has steps but no bytes, so it cannot be replayed or forked."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id} was ingested from a trace, which holds no bytes: it cannot be "
            "replayed or forked (show, lint, diff and export read it)"
        )


class SecretWarning(UserWarning):
    """A request or response body carries something that looks like a credential."""


class DivergenceError(BaseException):
    """Replay saw something the tape did not record.

    It derives from ``BaseException``, as pytest's own ``Failed`` does, so that an SDK's
    ``except Exception`` retry loop cannot swallow it and retry with backoff: a divergence
    is a verdict about the run, not a transient transport fault.
    """

    def __init__(
        self,
        reason: str,
        *,
        run: str = "",
        step: int | None = None,
        method: str = "",
        url: str = "",
        path: str = "",
        recorded: Any = None,
        new: Any = None,
    ) -> None:
        self.reason = reason
        self.run = run
        self.step = step
        self.method = method
        self.url = url
        self.path = path
        self.recorded = recorded
        self.new = new
        super().__init__(self.message())

    def message(self) -> str:
        where = f"run {self.run}" if self.run else "replay"
        if self.step is not None:
            where += f", step {self.step}"
        lines = [f"divergence in {where}: {self.reason}"]
        if self.method or self.url:
            lines.append(f"  request: {self.method} {self.url}".rstrip())
        if self.path:
            lines.append(f"  at {self.path}:")
            lines.append(f"    recorded: {_short(self.recorded)}")
            lines.append(f"    new:      {_short(self.new)}")
        return "\n".join(lines)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the error intact across process pools.
        return (_rebuild_divergence, (self.reason, self.__dict__.copy(), type(self)))


class NetworkBlockedError(DivergenceError):
    """A replaying agent opened a real connection: something made a request outside the seam.

    A ``DivergenceError``, so an SDK's ``except Exception`` retry loop cannot swallow it.
    """


class LintConfigError(SeamtapeError):
    """A lint or guard configuration is malformed; the message names the key and the file."""


class GuardTripped(BaseException):
    """A live guard stopped the run before a request left: a rule's breaker tripped.

    It derives from ``BaseException``, as :class:`DivergenceError` does, so that an SDK's
    ``except Exception`` retry loop cannot catch it and send the request again: a tripped
    breaker is a verdict about the run, not a transient fault. ``finding`` is the finding
    that tripped it (a ``seamtape.lenses.lint.Finding``), ``step`` the request that was held.
    """

    def __init__(
        self, message: str, *, run: str = "", step: int | None = None, finding: Any = None
    ):
        self.run = run
        self.step = step
        self.finding = finding
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_tripped, (str(self), self.run, self.step, self.finding))


def _rebuild_tripped(message: str, run: str, step: int | None, finding: Any) -> GuardTripped:
    return GuardTripped(message, run=run, step=step, finding=finding)


def _rebuild_divergence(
    reason: str, state: dict[str, Any], cls: type[DivergenceError] | None = None
) -> DivergenceError:
    state = {k: v for k, v in state.items() if k != "reason"}
    return (cls or DivergenceError)(reason, **state)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
