"""The settings validate and bench share: how blame runs and what world its tails live in."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

__all__ = ["TAIL_KINDS", "Settings"]

# "repeats": a live call is sampled only when it repeats a conversation the model has answered
# (the simulator's default: a fork's tail is answered deterministically); "sampled": every live
# call is sampled at the temperature, as a provider samples at temperature > 0.
TAIL_KINDS = ("repeats", "sampled")


@dataclass(frozen=True)
class Settings:
    """Blame's settings and the world's; stored in a report so that --check can repeat it."""

    experiment: ClassVar[str] = ""
    flags: ClassVar[tuple[str, ...]] = ("seed", "max_trials", "temperature", "workers", "tails")

    seed: int = 0
    max_trials: int = 10
    min_trials: int = 2
    threshold: float = 0.5
    confidence: float = 0.95
    temperature: float = 1.0
    workers: int = 2
    tails: str = "both"  # "repeats", "sampled", or "both" side by side

    def __post_init__(self) -> None:
        if self.tails not in (*TAIL_KINDS, "both"):
            raise ValueError(f"tails must be one of {', '.join(TAIL_KINDS)} or both")

    @property
    def tail_kinds(self) -> tuple[str, ...]:
        return TAIL_KINDS if self.tails == "both" else (self.tails,)

    def command(self) -> str:
        """The command that repeats these settings: only the flags that differ from defaults."""
        base = type(self)()
        options = [
            f"--{name.replace('_', '-')} {value}"
            for name, value in asdict(self).items()
            if value != getattr(base, name) and name in self.flags
        ]
        return " ".join([f"seamtape {self.experiment}", *options])
