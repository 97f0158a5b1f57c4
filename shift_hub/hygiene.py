"""How a worker process behaves: it dies with the run, uses one thread, and hands large freed heaps back.

Every engine's workers (process pool, Ray tasks, the masks pool) call these; the module imports nothing of
shift_hub, so anything may use it.
"""
from __future__ import annotations

import functools
import os

LARGE_IMAGE_PIXELS = 4_000_000  # after an image this large, the heap it needed is handed back (see below)


def pool_worker(parent_pid: int) -> None:
    """A pool worker: dies with its parent (a SIGKILLed run leaves no idle workers behind), one thread."""
    die_with_parent(parent_pid)
    single_threaded_worker()


def die_with_parent(parent_pid: int) -> None:
    """Exit when the parent process goes away: PR_SET_PDEATHSIG on Linux, and a watchdog thread anywhere."""
    import signal
    import sys
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="shift_hub-parent-watchdog", daemon=True).start()


def single_threaded_worker() -> None:
    """One BLAS/OpenMP/OpenCV thread per worker process: N workers use N cores, not N x cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(1)  # numpy's BLAS was loaded before the variables above were set


def return_freed_memory() -> None:
    """glibc keeps the heap a large image needed after it is freed, and fragments left in it make later
    images grow it further: a worker's RSS then climbs with the large photos it has seen (1.1 GB after the
    12 MP tail of bench/bench_scale.py). malloc_trim returns the free pages to the OS; it costs a
    few milliseconds and only runs after large images. Elsewhere than glibc it does nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
