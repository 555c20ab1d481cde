"""The process's memory while it scores: handing what it freed back to the OS (glibc on Linux; elsewhere a
no-op), and sparing the scoring loop Python's cyclic garbage collector.

On a CPU, every batch of pairs of one length allocates tensors of a new size; glibc keeps what is freed, and its
heap fragments: RSS swelled by 290-530 MiB within a chunk of 20,000 pairs, by a different amount in every chunk.
Trimming after every batch costs 10-20% of the speed (the pages fault in again); trimming whenever the process
has grown `budget_mib` past its size after the last trim bounds the swing for a small share of that.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator


def rss_mib() -> float:
    """The resident set size of this process in MiB (0 where /proc is absent)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_freed_memory() -> None:
    """Return the heap memory glibc holds free to the OS."""
    if trim := _malloc_trim():
        trim(0)


class HeapTrimmer:
    """Call it after each batch: it trims the heap once RSS is `budget_mib` above what it was after the last trim.
    Safe from several threads (an export's streams): a call while another thread trims returns at once."""

    def __init__(self, budget_mib: float = 128.0) -> None:
        self.budget_mib = budget_mib
        self.floor_mib = rss_mib()
        self._trimming = threading.Lock()

    def __call__(self) -> None:
        if rss_mib() > self.floor_mib + self.budget_mib and self._trimming.acquire(blocking=False):
            try:
                release_freed_memory()
                self.floor_mib = rss_mib()
            finally:
                self._trimming.release()


# Reading and tokenizing a chunk allocates objects by the hundred thousand (parsed lines, a token list per text).
# At Python's default gen-0 threshold (700) the collector ran ~1,300 times per 200k pairs, the full collections
# walking every live object, modules included: 1.1 s of a 12 s host-side run, under the GIL (BENCHMARKS.md). The
# loop makes no cyclic garbage of its own; were some code to, this threshold still collects it once 50k objects
# are pending (a few MiB).
SCORING_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def rare_garbage_collection() -> Iterator[None]:
    """Within the block, Python's cyclic collector starts only after `SCORING_GC_THRESHOLD` net allocations
    (instead of 700 by default); the threshold is restored after it.

    Example:
        >>> with rare_garbage_collection():
        ...     rerank_chunks()
    """
    threshold = gc.get_threshold()
    gc.set_threshold(SCORING_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
