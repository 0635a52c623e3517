"""Threads kept for the next job instead of one started per job.

A node serves each connection in a thread of its own; the tests open thousands of short
connections, and starting a thread for each (and the scheduling that goes with it) was a
noticeable share of their CPU. A thread whose job is done waits here for the next one, from
any node in the process; a job never waits for a thread (a new one starts when none is
idle), so connections are served as concurrently as with a thread each.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable

Job = Callable[[], object]


class Reservoir:
    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Job]] = []   # the inboxes of waiting threads
        self._started = 0

    def run(self, job: Job) -> None:
        """Run `job` in a thread of its own now: an idle one, or a new (daemon) one."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
            if inbox is None:
                self._started += 1
                number = self._started
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), daemon=True,
                             name=f"{self._name}-{number}").start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Job]) -> None:
        while True:
            job = inbox.get()
            # An exception ends the thread, reported as any thread's, and its inbox is not
            # offered again.
            job()
            del job                     # nothing of it stays alive while the thread waits
            with self._lock:
                self._idle.append(inbox)


# The connection threads of every node in this process.
CONNECTIONS = Reservoir("emulator-connection")
