"""Plain callbacks through which long runs report progress and learn about cancellation.

The QGIS algorithms map them to QgsProcessingFeedback; the command line prints them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import Cancelled


def _ignore(*_args) -> None:
    return None


def _never() -> bool:
    return False


@dataclass
class Feedback:
    """Callbacks of a run.

    Args:
        progress: called with the fraction done, 0..1.
        is_cancelled: polled once per tile, batch or step.
        log: an informational line.
        warn: a line about an assumption the user should know of.
    """

    progress: Callable[[float], None] = field(default=_ignore)
    is_cancelled: Callable[[], bool] = field(default=_never)
    log: Callable[[str], None] = field(default=_ignore)
    warn: Callable[[str], None] = field(default=_ignore)

    def check_cancelled(self) -> None:
        """Raise Cancelled if the user asked to stop."""
        if self.is_cancelled():
            raise Cancelled("Cancelled by user.")

    def scaled(self, start: float, stop: float) -> "Feedback":
        """A Feedback whose progress 0..1 maps to start..stop of this one (for multi-step runs)."""
        return Feedback(lambda f: self.progress(start + (stop - start) * f), self.is_cancelled, self.log, self.warn)
