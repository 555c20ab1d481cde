"""Reranking a whole rerank file: streamed in chunks of whole queries (`reranker.inference.chunks`), written as
it goes, resumable, shardable.

Durability: the output is written to `OUT.partial`; after each chunk the partial file is synced and
`OUT.progress.json` records how far input and output got. Run the same command again after a crash or kill and it
continues from the last completed chunk; the finished file is renamed to `OUT` (a file under the final name is
always complete) and `OUT.summary.json` is written beside it.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from reranker.inference.chunks import Sharding, check_chunk_size, output_fingerprint, whole_query_chunks
from reranker.inference.heap import rare_garbage_collection
from reranker.inference.prefetch import prefetch
from reranker.inference.scoring import PairScorer, PendingScores, ranked_groups
from reranker.inference.worker_processes import in_worker_processes
from reranker.io.errors import check_at_least
from reranker.io.rerank_input import QueryBlock, iter_query_blocks
from reranker.io.resumable import Progress, ResumableOutput
from reranker.io.runs import format_score_line
from reranker.io.stamps import file_stamp, fingerprint
from reranker.io.summary import finished_summary, write_summary
from reranker.model.pair_encoding import EncodedPairs, GroupEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RerankStats:
    """What a run did: totals for this shard, wall time, and the part of it spent making progress durable."""

    queries: int
    candidates: int
    seconds: float
    checkpoint_seconds: float


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk ready to score: its queries' ids with their candidates' docids (the texts are dropped once
    encoded, to keep chunks small), the encoded pairs, and where the chunk ends."""

    queries: list[tuple[str, list[str]]]
    pairs: EncodedPairs
    input_lines: int
    chunks_seen: int


def encode_blocks(encoder: GroupEncoder, blocks: Sequence[QueryBlock]) -> EncodedPairs:
    """Every candidate of the blocks, block after block, each query tokenized once."""
    passages = [[(c.title, c.text) for c in block.candidates] for block in blocks]
    instructions = [block.instruction for block in blocks]
    return encoder.encode_groups([block.query for block in blocks], passages, instructions=instructions)


def _encode(encoder: GroupEncoder, blocks: list[QueryBlock], input_lines: int, chunks_seen: int) -> EncodedChunk:
    queries = [(b.query_id, [c.docid for c in b.candidates]) for b in blocks]
    return EncodedChunk(queries, encode_blocks(encoder, blocks), input_lines, chunks_seen)


def scoring_job(input_path: str | os.PathLike, model_source: dict, scorer: PairScorer) -> str:
    """The fingerprint of everything that determines the scores: the input file, the model and tokenizer
    (`model_source`: their stamps or Hub names, and the revision), encoding, precision and padding."""
    encoder = scorer.encoder
    return fingerprint(
        input=file_stamp(input_path),
        **model_source,
        lengths=(encoder.q_max_len, encoder.p_max_len),
        separator=encoder.separator,
        dtype=scorer.dtype,
        head="fp32",  # since the head runs in fp32 under autocast: files scored before differ
        padding=scorer.pad_to_multiple_of,
        **scorer.options.fingerprint(),
    )


def iter_chunks(
    input_path: str, chunk_size: int, skip_lines: int = 0, first_chunk: int = 0
) -> Iterator[tuple[int, list[QueryBlock], int]]:
    """Yield (chunk number, query blocks, last input line) for every chunk of a rerank file."""
    blocks = iter_query_blocks(input_path, skip_lines=skip_lines)
    chunks = whole_query_chunks(blocks, lambda block: len(block.candidates), chunk_size)
    for number, chunk in enumerate(chunks, start=first_chunk):
        yield number, chunk, chunk[-1].last_line


def _own_chunks(
    encoder: GroupEncoder, input_path: str, start: Progress, chunk_size: int, sharding: Sharding
) -> Iterator[EncodedChunk]:
    # parsing the next chunk's JSON (Python, under the GIL) overlaps tokenizing this one (Rust, without it)
    chunks = prefetch(iter_chunks(input_path, chunk_size, start.input_lines, start.chunks_seen), depth=1)
    for number, blocks, last_line in chunks:
        if sharding.owns(number):
            yield _encode(encoder, blocks, last_line, number + 1)


def _worker_share(
    encoder: GroupEncoder, input_path: str, start: Progress, chunk_size: int, sharding: Sharding,
    share: tuple[int, int],
) -> Iterator[EncodedChunk]:  # fmt: skip
    return _own_chunks(encoder, input_path, start, chunk_size, Sharding((*sharding.levels, share)))


def encoded_chunks(
    encoder: GroupEncoder, input_path: str, start: Progress, chunk_size: int, sharding: Sharding, workers: int = 0
) -> Iterator[EncodedChunk]:
    """This shard's chunks from `start` on, encoded, in file order: in a thread beside the caller, or (`workers`
    > 0) in that many spawned processes, each reading the whole file and encoding every `workers`-th chunk, so
    that JSON parsing and tokenizing (~26 us of Python a pair) leave the scoring process's GIL to the model."""
    if not workers:
        return prefetch(_own_chunks(encoder, input_path, start, chunk_size, sharding), depth=1)
    logger.info("reading and tokenizing %s in %d worker processes", input_path, workers)
    share = functools.partial(_worker_share, encoder, input_path, start, chunk_size, sharding)
    return prefetch(in_worker_processes(share, workers, order=lambda chunk: chunk.chunks_seen), depth=1)


def _ranked_lines(chunk: EncodedChunk, scores: np.ndarray) -> str:
    """Each query's candidates sorted by score, descending; ties keep input order (stable sort)."""
    out = []
    groups = ranked_groups(scores, (len(docids) for _, docids in chunk.queries))
    for (query_id, docids), (query_scores, order) in zip(chunk.queries, groups, strict=True):
        out.extend(format_score_line(query_id, docids[i], query_scores[i]) for i in order)
    return "".join(out)


def _queued(scorer: PairScorer, chunks: Iterator[EncodedChunk]) -> Iterator[tuple[EncodedChunk, PendingScores]]:
    """Each chunk with its queued scores. With `queue_ahead`, chunks are queued from a thread, one ahead: the device
    computes the next chunk while this thread reads, ranks and writes this one (the GPU drained at every chunk)."""
    items = ((chunk, scorer.submit(chunk.pairs)) for chunk in chunks)
    return prefetch(items, depth=1) if scorer.options.queue_ahead else items


def rerank_file(
    scorer: PairScorer,
    input_path: str,
    output_path: str,
    chunk_size: int = 20000,
    sharding: Sharding | None = None,
    job: str | None = None,
    arguments: dict | None = None,
    show_progress: bool = True,
    encode_workers: int = 0,
) -> RerankStats:
    """Score every candidate of this shard's chunks and write `qid<TAB>docid<TAB>score`, resuming if possible.

    `job` identifies the input, model and settings (default: the input file alone); with the sharding and chunk
    size it makes the fingerprint that progress records and the output's summary carry. If `output_path` is
    already complete for the same fingerprint, nothing is done. `encode_workers`: processes reading and
    tokenizing the input (see `encoded_chunks`; 0: a thread), with the same output.
    """
    check_chunk_size(chunk_size)
    check_at_least("encode_workers", encode_workers, 0)
    sharding = sharding or Sharding()
    job = job or fingerprint(input=file_stamp(input_path))
    output_print = output_fingerprint(job, sharding, chunk_size)
    if done := finished_summary(output_path, output_print):
        logger.info("%s is already complete for this job", output_path)
        return RerankStats(done["queries"], done["candidates"], 0.0, 0.0)
    started = time.perf_counter()
    with ResumableOutput(output_path, output_print) as out, rare_garbage_collection():
        chunks = encoded_chunks(scorer.encoder, input_path, out.progress, chunk_size, sharding, encode_workers)
        bar = tqdm(
            total=None, initial=out.progress.candidates, desc="scoring", unit=" pairs", disable=not show_progress
        )
        with bar:
            for chunk, pending in _queued(scorer, chunks):
                scores = pending.result()
                if len(scores) != sum(len(docids) for _, docids in chunk.queries):
                    raise RuntimeError("internal error: a candidate did not get exactly one score")
                text = _ranked_lines(chunk, scores).encode("utf-8")
                out.write(text, input_lines=chunk.input_lines, chunks_seen=chunk.chunks_seen,
                          queries=len(chunk.queries), candidates=len(scores))  # fmt: skip
                bar.update(len(scores))
                # the line benchmarks/chunk_timings.py reads
                logger.debug("chunk %d written: %d candidates in all", chunk.chunks_seen, out.progress.candidates)
                del chunk, scores, pending  # freed before the next chunk arrives, not after
    progress = out.progress
    stats = RerankStats(progress.queries, progress.candidates, time.perf_counter() - started, out.checkpoint_seconds)
    write_summary(
        output_path, "inference", arguments or {}, fingerprint=output_print, job=job, sharding=sharding.levels,
        chunk_size=chunk_size, queries=stats.queries, candidates=stats.candidates, seconds=round(stats.seconds, 3),
        pairs_per_second=round((stats.candidates - out.resumed_at) / max(stats.seconds, 1e-9), 1),
        checkpoint_seconds=round(stats.checkpoint_seconds, 3),
    )  # fmt: skip
    logger.info("scored %d candidates of %d queries in %.1fs", stats.candidates, stats.queries, stats.seconds)
    return stats
