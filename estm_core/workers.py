"""The project's one process pool: workers that never outlive the process that made them, and leave at once; and
the one ordered map over it (`in_order`).

A pool's workers block on a queue from their parent; when the parent is killed outright (`kill -9`, the OOM killer)
nothing closes that queue, and they would keep running (and holding memory) forever. Each worker therefore watches
its parent and exits as soon as it is gone.

A spawned worker ends like any interpreter, tearing down every module it imported: with the numerical libraries
loaded that took half a second, every pool's shutdown waits for it, and it does nothing a worker needs (its results are
sent by then, and it owns no files). So a worker leaves with os._exit once its work is done.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

PARENT_POLL_SECONDS = 1.0
Item, Result = TypeVar("Item"), TypeVar("Result")


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of `jobs` worker processes that exit within about a second of their parent's death."""
    # spawn, not fork: a forked copy of a parent that has loaded torch's, numba's or OpenMP's thread pools can hang
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(),))


def in_order(function: Callable[[Item], Result], items: Sequence[Item], jobs: int) -> Iterator[Result]:
    """function(item) for each item, yielded in the items' order. With jobs > 1 (and more than one item) they are
    computed in that many worker processes (`function` must be picklable: a module-level function), never more than
    2 * jobs ahead of the one yielded, so memory stays bounded and a caller that stops early wastes little."""
    if jobs <= 1 or len(items) <= 1:
        yield from map(function, items)
        return
    with process_pool(jobs) as pool:
        pending = deque(pool.submit(function, item) for item in items[: 2 * jobs])
        following = len(pending)
        try:
            while pending:
                result = pending.popleft().result()
                if following < len(items):
                    pending.append(pool.submit(function, items[following]))
                    following += 1
                yield result
        finally:
            for future in pending:
                future.cancel()


def _start_worker(parent_pid: int) -> None:
    # Not prctl(PR_SET_PDEATHSIG): it fires when the parent *thread* that started the worker ends, which kills the
    # workers of a pool that a short-lived thread happened to grow.
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="estm-parent-watch", daemon=True).start()
    atexit.register(_leave)


def _leave() -> None:
    """The worker's last atexit handler (registered first, so run last): out without the modules' teardown."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _watch_parent(parent_pid: int) -> None:
    # An orphan is adopted by init (or a subreaper), so its parent id changes the moment the parent dies.
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)  # not sys.exit: the main thread may be deep in a computation that would never look at it
