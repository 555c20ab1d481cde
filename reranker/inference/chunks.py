"""How a rerank file is cut into chunks and the chunks dealt out to shards.

Chunks: consecutive queries are gathered until they hold at least `chunk_size` candidates. A chunk is sorted by
length and batched on its own, so its scores do not depend on anything outside it; sharding hands out whole chunks
(never splitting a query), which makes any sharded run, merged, byte-identical to a single-process run. Scoring
and merging cut chunks with the one rule here: merging is byte-identical only while the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from reranker.io.errors import ParameterError, check_at_least
from reranker.io.stamps import fingerprint

Block = TypeVar("Block")


def check_chunk_size(chunk_size: int) -> None:
    check_at_least("chunk_size", chunk_size, 1)


def whole_query_chunks(
    blocks: Iterable[Block], candidates: Callable[[Block], int], chunk_size: int
) -> Iterator[list[Block]]:
    """Gather consecutive query blocks into chunks of at least `chunk_size` candidates (the last may hold fewer);
    `candidates(block)` is a block's number of candidates."""
    chunk: list[Block] = []
    pending = 0
    for block in blocks:
        chunk.append(block)
        pending += candidates(block)
        if pending >= chunk_size:
            yield chunk
            chunk, pending = [], 0
    if chunk:
        yield chunk


def check_sharding(num_shards: int, shard_index: int) -> None:
    check_at_least("num_shards", num_shards, 1)
    if not 0 <= shard_index < num_shards:
        raise ParameterError(f"{{0}} must be in [0, {num_shards}), got {shard_index}", "shard_index")


@dataclass(frozen=True)
class Sharding:
    """Which chunks one process scores: `levels` are (count, index) pairs, outermost first.

    Chunk c belongs to index c % count of the first level; the chunks of that shard are dealt out again by the
    next level, and so on: `--encode_num_shard K --encode_shard_index i` on a machine running W torchrun ranks is
    ((K, i), (W, rank)). Merging the innermost level's outputs round-robin by chunk gives the outer shard's output.
    """

    levels: tuple[tuple[int, int], ...] = ()

    def owns(self, chunk: int) -> bool:
        for count, index in self.levels:
            if chunk % count != index:
                return False
            chunk //= count
        return True


def output_fingerprint(job: str, sharding: Sharding | tuple, chunk_size: int) -> str:
    """The fingerprint of what one shard writes: the job (input, model, settings), its sharding and chunk size."""
    levels = sharding.levels if isinstance(sharding, Sharding) else tuple(tuple(level) for level in sharding)
    return fingerprint(job=job, sharding=levels, chunk_size=chunk_size)
