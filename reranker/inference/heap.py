"""Handing memory the process freed back to the OS while it scores (glibc on Linux; elsewhere a no-op).

On a CPU, every batch of pairs of one length allocates tensors of a new size; glibc keeps what is freed, and its
heap fragments: RSS swelled by 290-530 MiB within a chunk of 20,000 pairs, by a different amount in every chunk.
Trimming after every batch costs 10-20% of the speed (the pages fault in again); trimming whenever the process
has grown `budget_mib` past its size after the last trim bounds the swing for a small share of that.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable


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
    """Call it after each batch: it trims the heap once RSS is `budget_mib` above what it was after the last trim."""

    def __init__(self, budget_mib: float = 128.0) -> None:
        self.budget_mib = budget_mib
        self.floor_mib = rss_mib()

    def __call__(self) -> None:
        if rss_mib() > self.floor_mib + self.budget_mib:
            release_freed_memory()
            self.floor_mib = rss_mib()
