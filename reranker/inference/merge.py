"""Merging sharded score files into the file a single process would have written.

Shard i of K holds chunks i, i+K, i+2K, ... of the input (`reranker.inference.chunks`), so taking one chunk from
each shard in turn restores the input order. The merge checks that the shards are disjoint and complete (every
shard present, none cut short) and, where the shards have summaries, that they come from the same job, with the
same chunk size, as shards 0..K-1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from reranker.inference.chunks import output_fingerprint, whole_query_chunks
from reranker.io.errors import InputError, ParameterError
from reranker.io.runs import format_score_line, iter_score_blocks
from reranker.io.summary import read_summary, write_summary
from reranker.io.textio import atomic_output

logger = logging.getLogger(__name__)
Block = tuple[str, list[tuple[str, float]]]


def iter_score_chunks(path: str | Path, chunk_size: int) -> Iterator[list[Block]]:
    """Group a shard's query blocks into the chunks they were scored in."""
    blocks = iter_score_blocks(path, allow_empty=True)  # a shard may hold no chunk at all
    return whole_query_chunks(blocks, lambda block: len(block[1]), chunk_size)


def _levels(summary: dict) -> list[tuple[int, int]]:
    return [tuple(level) for level in summary["sharding"]]


def check_shard_summaries(inputs: list[Path], chunk_size: int | None) -> tuple[dict | None, int]:
    """Check the shards' summaries agree (same job and chunk size, indices 0..K-1); return the first and chunk size."""
    summaries = [read_summary(path) for path in inputs]
    if any(s is None for s in summaries):
        if chunk_size is None:
            raise ParameterError("the shards have no summaries: give {0} (the inference's chunk size)", "chunk_size")
        logger.warning("some shards have no summary: checking their structure only")
        return None, chunk_size
    first = summaries[0]
    outer = _levels(first)[:-1]
    for position, (path, summary) in enumerate(zip(inputs, summaries, strict=True)):
        if summary["job"] != first["job"] or summary["chunk_size"] != first["chunk_size"]:
            raise InputError(path, None, f"shard comes from a different job or chunk size than {inputs[0]}")
        expected = [*outer, (len(inputs), position)]
        if _levels(summary) != expected:
            raise InputError(
                path,
                None,
                f"shard has sharding {_levels(summary)}, expected {expected}: give each shard once, in order",
            )
    if chunk_size is not None and chunk_size != first["chunk_size"]:
        raise ParameterError(f"{{0}} {chunk_size} differs from the shards' {first['chunk_size']}", "chunk_size")
    return first, first["chunk_size"]


def merge_score_files(inputs: list[Path], output: Path, chunk_size: int | None = None) -> tuple[int, int]:
    """Merge shard score files round-robin by chunk into `output`; returns (queries, candidates)."""
    started = time.perf_counter()
    first, chunk_size = check_shard_summaries(inputs, chunk_size)
    shards = [iter_score_chunks(path, chunk_size) for path in inputs]
    seen: set[str] = set()
    queries = candidates = 0
    with atomic_output(output) as out:
        ended_at: int | None = None
        while ended_at is None:
            for index, shard in enumerate(shards):
                chunk = next(shard, None)
                if chunk is None:
                    ended_at = index if ended_at is None else ended_at
                    continue
                if ended_at is not None:
                    raise InputError(inputs[ended_at], None, f"shard ended early: {inputs[index]} has more chunks")
                for qid, scored in chunk:
                    if qid in seen:
                        raise InputError(inputs[index], None, f"query {qid!r} is in more than one shard")
                    seen.add(qid)
                    out.writelines(format_score_line(qid, docid, score) for docid, score in scored)
                    queries, candidates = queries + 1, candidates + len(scored)
        for index, shard in enumerate(shards):
            if next(shard, None) is not None:
                raise InputError(inputs[ended_at], None, f"shard ended early: {inputs[index]} has more chunks")
    if first is not None:
        outer = _levels(first)[:-1]
        write_summary(
            output, "merge", {"inputs": [str(p) for p in inputs]}, job=first["job"], sharding=outer,
            chunk_size=chunk_size, fingerprint=output_fingerprint(first["job"], outer, chunk_size),
            queries=queries, candidates=candidates, seconds=round(time.perf_counter() - started, 3),
        )  # fmt: skip
    return queries, candidates
