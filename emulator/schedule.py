"""The emulator's scheduler (off unless the `schedule_ms` knob is set): every `schedule_ms`
it starts each pipe a real node's scheduler would start. Sesam's own intervals are ignored:
tests want runs now, not in 900 seconds."""
from __future__ import annotations

import threading

from .pump import start_run
from .store import Pipe, Store


def _due(pipe: Pipe) -> bool:
    mode = (pipe.effective.get("pump") or {}).get("mode", "scheduled")
    return (mode == "scheduled" and not pipe.disabled and not pipe.running
            and not pipe.errors and not pipe.deploying())


def tick(store: Store) -> list[str]:
    """Start every due pipe once; the ids started."""
    with store.lock:
        due = [pid for pid, pipe in store.pipes.items() if _due(pipe)]
        for pid in due:
            start_run(store, pid)
        return due


class Scheduler:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0            # rounds done, so a test can wait for some to pass

    def ensure_running(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name="emulator-scheduler")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            interval = self._store.knobs.schedule_ms
            if interval > 0:
                tick(self._store)
                self.ticks += 1
            self._stop.wait(max(interval, 50) / 1000)
