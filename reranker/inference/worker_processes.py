"""Producing a stream's items in spawned worker processes and merging them back in order (here: reading and
tokenizing a rerank file's chunks, so that the scoring process keeps its GIL for the model's kernel launches).

Each worker is handed its share, (workers, index) (a rerank file's: one more `Sharding` level), and produces it;
every item carries its place in the stream (`order`), each share comes in that order, so a merge by it restores
the stream.
Processes are spawned, not forked: a fork of a process running torch and the tokenizers' thread pools is unsafe.
"""

from __future__ import annotations

import heapq
import multiprocessing
import pickle
import queue
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_POLL_SECONDS = 1.0  # how often a blocked side checks that the other is still alive


class _Done:
    """A worker's last message."""


class _Failure:
    """A worker's exception, sent to the parent to raise; as a RuntimeError with its message where it would not
    arrive whole (an exception class whose arguments are not its constructor's cannot be unpickled)."""

    def __init__(self, error: BaseException) -> None:
        try:
            pickle.loads(pickle.dumps(error))
            self.error = error
        except Exception:
            self.error = RuntimeError(f"{type(error).__name__}: {error}")


def in_worker_processes(
    produce: Callable[[tuple[int, int]], Iterable[T]], workers: int, order: Callable[[T], int], depth: int = 1
) -> Iterator[T]:
    """The items `produce((workers, i))` yields in worker i, for i in range(workers), merged by `order`.

    Args:
        produce: a picklable callable (a module-level function or a `functools.partial` of one) giving a
            worker's share of the items, each share in increasing `order`.
        workers: how many processes to spawn.
        order: an item's place in the whole stream.
        depth: items a worker may have ready ahead of the parent.

    Returns:
        An iterator over all the items in increasing `order`; a worker's exception is raised here, a worker that
        dies without one is a RuntimeError. Closing it (or leaving it) stops the workers.

    Example (as `reranker.inference.score_file.encoded_chunks` does: each worker encodes every other chunk,
    `chunks_seen` orders them):
        >>> share = functools.partial(_worker_share, encoder, input_path, start, chunk_size, sharding)
        >>> chunks = in_worker_processes(share, workers=2, order=lambda chunk: chunk.chunks_seen)
    """
    context = multiprocessing.get_context("spawn")
    channels = [context.Queue(maxsize=depth) for _ in range(workers)]
    processes = [
        context.Process(target=_work, args=(produce, (workers, index), channel), name=f"worker {index}", daemon=True)
        for index, channel in enumerate(channels)
    ]
    for process in processes:
        process.start()
    try:
        yield from heapq.merge(*map(_received, channels, processes), key=order)
    finally:
        for process in processes:
            process.terminate()
            process.join()


def _received(channel: multiprocessing.Queue, process: multiprocessing.Process) -> Iterator:
    while True:
        try:
            message = channel.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if not process.is_alive():  # its queue is flushed before a process ends: nothing more will come
                raise RuntimeError(f"{process.name} died (exit code {process.exitcode}) before it finished") from None
            continue
        if isinstance(message, _Failure):
            raise message.error
        if isinstance(message, _Done):
            return
        yield message


def _work(produce: Callable[[tuple[int, int]], Iterable], share: tuple[int, int], channel: multiprocessing.Queue):
    try:
        for item in produce(share):
            _send(channel, item)
        _send(channel, _Done())
    except BaseException as error:  # handed to the parent, which raises it
        _send(channel, _Failure(error))


def _send(channel: multiprocessing.Queue, message: object) -> None:
    parent = multiprocessing.parent_process()
    while True:
        try:
            channel.put(message, timeout=_POLL_SECONDS)
            return
        except queue.Full:
            if parent is not None and not parent.is_alive():  # killed: nobody will read, and nobody will stop us
                raise SystemExit(1) from None
