"""Reranking a file across processes: every torchrun rank scores its chunks, rank 0 merges them into the file a
single process would have written. With one process this is `rerank_file` itself."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from reranker.distributed import World, barrier, process_group
from reranker.inference.chunks import Sharding, output_fingerprint
from reranker.inference.merge import merge_score_files
from reranker.inference.score_file import RerankStats, rerank_file
from reranker.inference.scoring import PairScorer
from reranker.io.resumable import partial_paths
from reranker.io.summary import finished_summary, summary_path

logger = logging.getLogger(__name__)


def _remove_with_summary(path: Path) -> None:
    for leftover in (path, summary_path(path), *partial_paths(path)):
        leftover.unlink(missing_ok=True)


def rerank_file_on_all_ranks(
    scorer: PairScorer,
    input_path: str,
    output_path: str,
    *,
    job: str,
    chunk_size: int,
    shards: tuple[tuple[int, int], ...] = (),
    arguments: dict | None = None,
    show_progress: bool = True,
    encode_workers: int = 0,
) -> RerankStats:
    """Score `input_path` into `output_path`; `shards` are the machine-level (count, index) levels, if any.

    Under torchrun every rank scores its chunks into `OUT.rankR`, then rank 0 merges them into OUT
    (byte-identical to a single-process run) and removes them. Returns this process's share of the work.
    """
    world = World.from_environment()
    if world.size == 1:
        return rerank_file(scorer, input_path, output_path, chunk_size, Sharding(shards), job, arguments,
                           show_progress, encode_workers)  # fmt: skip
    final = Path(output_path)
    if done := finished_summary(final, output_fingerprint(job, shards, chunk_size)):
        logger.info("%s is already complete for this job", final)
        return RerankStats(done["queries"], done["candidates"], 0.0, 0.0)
    rank_outputs = [final.with_name(f"{final.name}.rank{r}") for r in range(world.size)]
    with process_group(world):
        sharding = Sharding((*shards, (world.size, world.rank)))
        stats = rerank_file(scorer, input_path, os.fspath(rank_outputs[world.rank]), chunk_size, sharding, job,
                            arguments, show_progress, encode_workers)  # fmt: skip
        barrier()
        if world.rank == 0:
            merge_score_files(rank_outputs, final)
            for path in rank_outputs:
                _remove_with_summary(path)
        barrier()
    return stats
