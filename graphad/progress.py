"""Progress on stderr for preparations that take a while.

A compile that is still running after a couple of seconds says what it is
doing, one line per stage, and how long it took at the end. Only where stderr
is a terminal: scripts, pipes, logs and tests stay silent.
``GRAPHAD_PROGRESS=1`` turns the lines on anywhere, ``0`` off.
"""

from __future__ import annotations

import os
import sys
import threading
import time

DELAY = 2.0  # seconds before the first line


def _enabled() -> bool:
    setting = os.environ.get("GRAPHAD_PROGRESS", "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


class Progress:
    """``with Progress("compiling 1,200 nodes") as p: ... p.stage("the passes") ...``"""

    def __init__(self, what: str):
        self.what = what
        self.current = "starting"
        self.shown = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Progress:
        self.start = time.perf_counter()
        if _enabled():
            self._timer = threading.Timer(DELAY, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _print(self, text: str) -> None:
        print(f"graphad: {self.what}: {text}", file=sys.stderr, flush=True)

    def _show(self) -> None:
        with self._lock:
            if not self.shown:
                self.shown = True
                self._print(f"{self.current}...")

    def stage(self, name: str) -> None:
        with self._lock:
            self.current = name
            if self.shown:
                self._print(f"{name}...")

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            if self.shown:
                outcome = "failed" if exc[0] is not None else "done"
                self._print(f"{outcome} in {time.perf_counter() - self.start:.1f} s")
