"""A one-line progress bar of a batch run on stderr: scenes and input pixels done, time left.

On a terminal the line is redrawn in place; elsewhere (a log file, CI) a line is printed when a
scene finishes and at most every LOG_INTERVAL seconds otherwise.
"""
from __future__ import annotations

import sys
import time

LOG_INTERVAL = 10.0
WIDTH = 24


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    """Scenes done of `scenes`, input pixels done of `pixels`; time left from the work rate.

    Args:
        scenes: scenes to compute in this run (skipped ones are not counted).
        pixels: their input pixels (height x width); time left weighs by pixels x bands (`work`).
        work: pixels x bands of those scenes.
        stream: where to draw (default stderr).
    """

    def __init__(self, scenes: int, pixels: float, work: float, stream=None, skipped: int = 0):
        self.stream = stream or sys.stderr
        self.scenes, self.pixels, self.work, self.skipped = scenes, float(pixels), float(work), skipped
        self.done = self.failed = 0
        self.pixels_done = self.work_done = 0.0
        self.started = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_line = ""
        self.last_print = -LOG_INTERVAL

    def line(self) -> str:
        elapsed = time.perf_counter() - self.started
        fraction = self.work_done / self.work if self.work else 1.0
        filled = int(WIDTH * min(1.0, fraction))
        left = f"about {_clock(elapsed / fraction - elapsed)} left" if 0 < fraction < 1 else (
            "done" if fraction >= 1 else "time left after the first tiles")
        failed = f", {self.failed} failed" if self.failed else ""
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        unit, factor = ("Mpx", 1e6) if self.pixels >= 1e5 else ("kpx", 1e3)
        return (f"[{'#' * filled}{'.' * (WIDTH - filled)}] scenes {self.done + self.failed}/{self.scenes}"
                f"{failed}{skipped}, {self.pixels_done / factor:.2f}/{self.pixels / factor:.2f} {unit}, "
                f"{_clock(elapsed)} elapsed, {left}")

    def update(self, pixels_done: float, work_done: float, scene_finished: bool = False):
        self.pixels_done, self.work_done = pixels_done, work_done
        self.draw(force=scene_finished)

    def scene(self, failed: bool = False):
        if failed:
            self.failed += 1
        else:
            self.done += 1

    def draw(self, force: bool = False):
        line = self.line()
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self.last_line)))
            self.stream.flush()
        elif force or now - self.last_print >= LOG_INTERVAL:
            if line != self.last_line:
                self.stream.write(line + "\n")
                self.stream.flush()
                self.last_print = now
        self.last_line = line

    def close(self):
        self.draw(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
