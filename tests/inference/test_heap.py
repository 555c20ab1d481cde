import ctypes
import mmap
import threading

import pytest

from reranker.inference import heap


def test_trims_only_once_grown_past_the_budget_since_the_last_trim(monkeypatch):
    readings = iter([100.0, 150.0, 250.0, 120.0, 200.0, 221.0, 130.0])
    monkeypatch.setattr(heap, "rss_mib", lambda: next(readings))
    trims = []
    monkeypatch.setattr(heap, "release_freed_memory", lambda: trims.append(len(trims)))
    trimmer = heap.HeapTrimmer(budget_mib=100)
    trimmer()  # 150 <= 100 + 100
    assert trims == []
    trimmer()  # 250 > 200: trims, then reads 120 as its new floor
    assert trims == [0] and trimmer.floor_mib == 120
    trimmer()  # 200 <= 220
    assert trims == [0]
    trimmer()  # 221 > 220
    assert trims == [0, 1] and trimmer.floor_mib == 130


def test_a_call_while_another_thread_trims_returns_without_trimming(monkeypatch):
    monkeypatch.setattr(heap, "rss_mib", lambda: 0.0)
    trimmer = heap.HeapTrimmer(budget_mib=100)
    monkeypatch.setattr(heap, "rss_mib", lambda: 500.0)
    inside, leave, trims = threading.Event(), threading.Event(), []

    def slow_trim():
        trims.append(threading.current_thread().name)
        inside.set()
        leave.wait(10)

    monkeypatch.setattr(heap, "release_freed_memory", slow_trim)
    first = threading.Thread(target=trimmer, name="first")
    first.start()
    assert inside.wait(10)
    trimmer()  # the first thread is still trimming: no second trim, no wait
    leave.set()
    first.join(10)
    assert trims == ["first"] and trimmer.floor_mib == 500.0


def test_rss_follows_memory_the_process_touches():
    # a fresh anonymous mapping: malloc could serve a block from free pages earlier tests left resident
    before = heap.rss_mib()
    with mmap.mmap(-1, 256 * 2**20) as block:
        block[::4096] = b"x" * len(range(0, len(block), 4096))  # touch every page: untouched ones are not resident
        assert heap.rss_mib() - before > 200


@pytest.mark.skipif(heap._malloc_trim() is None, reason="needs glibc (Linux)")
def test_release_returns_freed_heap_pages_to_the_os():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    heap.release_freed_memory()  # what earlier tests freed would otherwise serve these blocks, resident already
    blocks = [libc.malloc(64 * 1024) for _ in range(4096)]  # 256 MiB in blocks below glibc's mmap threshold
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    for block in blocks[::2]:  # holes between live blocks: free() itself gives back only a free heap top
        libc.free(block)
    held = heap.rss_mib()
    heap.release_freed_memory()
    assert held - heap.rss_mib() > 100  # of the 128 MiB freed: every whole page of every hole
    for block in blocks[1::2]:
        libc.free(block)
