"""Batching across requests: one scoring thread per process packs the pairs of every waiting request into
windows of at most `max_batch_tokens` tokens, which the inference layer's `PairScorer` sorts by length and cuts
into batches as it does for `reranker_inference.py`.

A request's pairs may span windows and a window may hold many requests. Requests are served first come, first
served: a window takes the oldest request's remaining pairs first. Scoring runs in its own thread, so the event
loop (and `/health`) answers while a window is scored.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from reranker.inference.scoring import PairScorer
from reranker.io.errors import check_at_least
from reranker.model.pair_encoding import EncodedPairs

logger = logging.getLogger(__name__)

# A window is sorted by length and cut into the scorer's batches: the more pairs it holds, the less padding and the
# fewer part-filled batches (dev600 windows of 200 pairs: 4% more tokens, 8% more attention, twice the batches of one
# 6,000-pair chunk). 65536 tokens (~800 MiniLM pairs) against TEI's 16384: 0.91x the ceiling against 0.87x
# (medians of four interleaved rounds at 32 clients, BENCHMARKS.md); a window takes only what is waiting, so a
# lightly loaded server's latency does not change.
SERVER_WINDOW_TOKENS = 65536


@dataclass(frozen=True)
class WindowStats:
    """What one scoring window held: pairs, tokens (unpadded) and requests."""

    pairs: int
    tokens: int
    requests: int


@dataclass
class ScoringJob:
    """One request's encoded pairs on their way through the scoring thread."""

    pairs: EncodedPairs
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    scores: np.ndarray = field(init=False)
    arrived: float = field(default_factory=time.monotonic)
    next_pair: int = 0  # pairs before it are in a window already
    scored: int = 0
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.scores = np.empty(len(self.pairs), dtype=np.float32)

    def finish(self, error: BaseException | None = None) -> None:
        """Hand the scores (or the error) to the waiting request, on its event loop."""
        self.loop.call_soon_threadsafe(_settle, self.future, self.scores, error)


def _settle(future: asyncio.Future, scores: np.ndarray, error: BaseException | None) -> None:
    if future.done():  # the request went away meanwhile
        return
    if error is None:
        future.set_result(scores)
    else:
        future.set_exception(error)


@dataclass
class _Slice:
    job: ScoringJob
    start: int
    end: int


class CrossRequestBatcher:
    """Scores the pairs of concurrent requests together in one background thread.

    Args:
        scorer: the model and its batching (`Reranker.scorer`).
        max_batch_tokens: tokens (unpadded) a window holds at most; a single longer pair still gets a window.
        max_wait_ms: how long the oldest waiting pair may wait for a window to fill before it is scored anyway.
        max_batch_requests: requests a window holds at most (1: no batching across requests; None: no limit).
        on_window: called with each window's `WindowStats` after it is scored (metrics).
        on_dropped: called with the number of pairs dropped because their request was cancelled (metrics).

    Example:
        >>> batcher = CrossRequestBatcher(reranker.scorer, max_batch_tokens=SERVER_WINDOW_TOKENS)
        >>> batcher.start()
        >>> scores = await batcher.score(reranker.scorer.encoder.encode(["a query"], [""], ["a passage"]))
    """

    def __init__(
        self,
        scorer: PairScorer,
        *,
        max_batch_tokens: int = SERVER_WINDOW_TOKENS,
        max_wait_ms: float = 2.0,
        max_batch_requests: int | None = None,
        on_window: Callable[[WindowStats], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        check_at_least("max_batch_tokens", max_batch_tokens, 1)
        check_at_least("max_wait_ms", max_wait_ms, 0)
        check_at_least("max_batch_requests", max_batch_requests, 1)
        self.scorer = scorer
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self.max_batch_requests = max_batch_requests
        self.on_window = on_window or (lambda stats: None)
        self.on_dropped = on_dropped or (lambda count: None)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: collections.deque[ScoringJob] = collections.deque()
        self._waiting_pairs = 0  # pairs of waiting jobs not yet in a window (read by metrics from other threads)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scoring", daemon=True)

    @property
    def waiting_pairs(self) -> int:
        """Pairs accepted and not yet scored."""
        return self._waiting_pairs

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Score what is waiting, then stop the thread."""
        self._stop.set()
        self._inbox.put(None)
        self._thread.join()

    async def score(self, pairs: EncodedPairs) -> np.ndarray:
        """Queue encoded pairs and wait for their fp32 scores (input order). Cancelling the wait (a client that
        went away) drops the pairs not yet scored."""
        loop = asyncio.get_running_loop()
        job = ScoringJob(pairs, loop, loop.create_future())
        if not len(pairs):
            return job.scores
        self._inbox.put(job)
        try:
            return await job.future
        except asyncio.CancelledError:
            job.cancelled = True
            raise

    def _run(self) -> None:
        while True:
            if not self._collect():
                return
            window = self._next_window()
            if window:
                self._score(window)

    def _collect(self) -> bool:
        """Move arrived jobs to the waiting line, blocking while there is nothing to score and waiting up to
        `max_wait` for a window to fill; False once closed with nothing left."""
        while not self._waiting:
            if self._stop.is_set() and self._inbox.empty():
                return False
            self._admit(self._inbox.get())
        while True:
            try:
                self._admit(self._inbox.get_nowait())
            except queue.Empty:
                break
        deadline = self._waiting[0].arrived + self.max_wait
        while self._waiting_tokens_below_budget() and (remaining := deadline - time.monotonic()) > 0:
            try:
                self._admit(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return True

    def _admit(self, job: ScoringJob | None) -> None:
        if job is None:  # close()'s wake-up call
            return
        self._waiting.append(job)
        self._waiting_pairs += len(job.pairs)

    def _waiting_tokens_below_budget(self) -> bool:
        tokens = 0
        for job in self._waiting:
            tokens += int(job.pairs.offsets[-1] - job.pairs.offsets[job.next_pair])
            if tokens >= self.max_batch_tokens:
                return False
        return self.max_batch_requests is None or len(self._waiting) < self.max_batch_requests

    def _next_window(self) -> list[_Slice]:
        """Take pairs from the oldest waiting jobs up to the token budget (at least one pair)."""
        window: list[_Slice] = []
        tokens = 0
        while self._waiting and (self.max_batch_requests is None or len(window) < self.max_batch_requests):
            job = self._waiting[0]
            if job.cancelled:
                self._drop(job)
                continue
            lengths = job.pairs.lengths[job.next_pair :]
            fits = int(np.searchsorted(np.cumsum(lengths), self.max_batch_tokens - tokens, side="right"))
            take = max(fits, 0 if window else 1)
            if not take:
                break
            window.append(_Slice(job, job.next_pair, job.next_pair + take))
            tokens += int(lengths[:take].sum())
            job.next_pair += take
            self._waiting_pairs -= take
            if job.next_pair == len(job.pairs):
                self._waiting.popleft()
            else:
                break  # the budget is spent
        return window

    def _drop(self, job: ScoringJob) -> None:
        self._waiting.popleft()
        dropped = len(job.pairs) - job.next_pair
        self._waiting_pairs -= dropped
        self.on_dropped(dropped)

    def _score(self, window: list[_Slice]) -> None:
        pairs = EncodedPairs.concatenate(
            [s.job.pairs.slice(s.start, s.end) for s in window], window[0].job.pairs.types is not None
        )
        try:
            scores = self.scorer.score_encoded(pairs)
        except Exception as error:  # a scoring failure fails the requests in this window, not the server
            logger.exception("scoring a window of %d pairs failed", len(pairs))
            for job in {id(s.job): s.job for s in window}.values():
                job.cancelled = True
                job.finish(error)
            return
        offset = 0
        for s in window:
            size = s.end - s.start
            s.job.scores[s.start : s.end] = scores[offset : offset + size]
            offset += size
            s.job.scored += size
            if s.job.scored == len(s.job.pairs):
                s.job.finish()
        self.on_window(WindowStats(len(pairs), int(pairs.offsets[-1]), len(window)))
