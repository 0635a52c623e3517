"""The service's thread pools with their threads kept between runs, for in-process runs.

Every run makes pools of its own (reading each node, reading the nodes at once, the
executor), so a test process that does thousands of runs started tens of thousands of
threads, a noticeable share of the suite's CPU. `ReusedThreadPool` is the standard
ThreadPoolExecutor, with the same queue, the same worker loop (concurrent.futures' own
`_worker`), at most `max_workers` threads and `shutdown` waiting for them; only its
threads come from a reservoir (emulator/threads.py) and go back there when the pool shuts
down, instead of being started for it and ending with it. The service keeps no per-thread
state (no thread-locals or context variables), so a reused thread behaves as a new one.
"""
from __future__ import annotations

import inspect
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import _worker  # type: ignore[attr-defined]

from emulator.threads import Reservoir

# The worker loop is called as ThreadPoolExecutor calls it in Python 3.11 to 3.13. Should a
# release call it otherwise, every pool's work would wait forever: fail here instead.
_WORKER_ARGS = ("executor_reference", "work_queue", "initializer", "initargs")
if tuple(inspect.signature(_worker).parameters) != _WORKER_ARGS:
    raise RuntimeError("tests/reused_threads.py: concurrent.futures.thread._worker takes "
                       f"{tuple(inspect.signature(_worker).parameters)}, not {_WORKER_ARGS}")

_THREADS = Reservoir("service-pool")
# Where the service makes its pools (each module names ThreadPoolExecutor itself).
POOL_MODULES = ("service.nodes.reading", "service.orchestrator", "service.nodes.executor")


class _Lent:
    """What the pool's shutdown joins: the end of the worker loop, not of the thread."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        self.done.wait(timeout)


class ReusedThreadPool(ThreadPoolExecutor):
    def _adjust_thread_count(self) -> None:
        # As ThreadPoolExecutor's own, with a lent thread in place of a new one.
        if self._idle_semaphore.acquire(timeout=0):
            return

        def weakref_cb(_, q=self._work_queue):
            q.put(None)

        if len(self._threads) < self._max_workers:
            lent = _Lent()
            args = (weakref.ref(self, weakref_cb), self._work_queue, self._initializer,
                    self._initargs)

            def loop() -> None:
                try:
                    _worker(*args)
                finally:
                    lent.done.set()
            self._threads.add(lent)
            _THREADS.run(loop)
