"""Reranking a whole rerank file: streamed in chunks of whole queries, written as it goes, resumable.

The output is written to `OUT.partial`; after each chunk the partial file is synced and `OUT.progress.json`
records how far input and output got. Run again after a crash or kill and the same command continues from the
last completed chunk; the finished file is renamed to `OUT`, so a file under the final name is always complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from reranker.prefetch import prefetch
from reranker.rerank_input import QueryBlock, iter_query_blocks
from reranker.runs import format_score_line
from reranker.scoring import PairScorer

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """How far a run got: input lines consumed, query blocks seen (all shards), and what this shard wrote."""

    fingerprint: str
    input_lines: int = 0
    blocks_seen: int = 0
    queries: int = 0
    candidates: int = 0
    output_bytes: int = 0


@dataclass(frozen=True)
class RerankStats:
    """What a run did: totals for this shard, wall time, and the part of it spent making progress durable."""

    queries: int
    candidates: int
    seconds: float
    checkpoint_seconds: float


@dataclass
class EncodedChunk:
    blocks: list[QueryBlock]
    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    input_lines: int
    blocks_seen: int


def job_fingerprint(input_path: str, **settings) -> str:
    """Identifies a job: the input file (path, size, mtime) and every setting that changes the output."""
    stat = os.stat(input_path)
    key = {"input": os.path.abspath(input_path), "size": stat.st_size, "mtime": stat.st_mtime_ns, **settings}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def partial_paths(output_path: str | os.PathLike) -> tuple[Path, Path]:
    """The in-progress output and the progress record of a job writing `output_path`."""
    output = Path(output_path)
    return output.with_name(output.name + ".partial"), output.with_name(output.name + ".progress.json")


def _load_progress(progress_path: Path, partial: Path, fingerprint: str) -> Progress:
    if progress_path.is_file() and partial.is_file():
        saved = Progress(**json.loads(progress_path.read_text()))
        if saved.fingerprint == fingerprint and partial.stat().st_size >= saved.output_bytes:
            logger.info(
                "resuming after input line %d (%d candidates already scored)", saved.input_lines, saved.candidates
            )
            return saved
        logger.warning("ignoring %s: it belongs to a different job", progress_path)
    return Progress(fingerprint)


def _save_progress(progress_path: Path, progress: Progress) -> None:
    tmp = progress_path.with_name(progress_path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(progress)))
    os.replace(tmp, progress_path)


def _encode_chunks(
    scorer: PairScorer, input_path: str, start: Progress, chunk_size: int, num_shards: int, shard_index: int
) -> Iterator[EncodedChunk]:
    encoder = scorer.encoder
    blocks: list[QueryBlock] = []
    lines, seen, pending = start.input_lines, start.blocks_seen, 0

    def encode() -> EncodedChunk:
        if not blocks:  # nothing of this shard since the last chunk: still record how far the input got
            return EncodedChunk([], [], None, lines, seen)
        queries = encoder.tokenize_queries([b.query for b in blocks])
        candidates = [c for b in blocks for c in b.candidates]
        passages = iter(encoder.tokenize_passages([c.title for c in candidates], [c.text for c in candidates]))
        pairs = [encoder.join(q, next(passages)) for q, b in zip(queries, blocks, strict=True) for _ in b.candidates]
        types = [t for _, t in pairs] if encoder.uses_token_types else None
        return EncodedChunk(list(blocks), [ids for ids, _ in pairs], types, lines, seen)

    for block in iter_query_blocks(input_path, skip_lines=start.input_lines):
        if seen % num_shards == shard_index:
            blocks.append(block)
            pending += len(block.candidates)
        seen, lines = seen + 1, block.last_line
        if pending >= chunk_size:
            yield encode()
            blocks, pending = [], 0
    if blocks or lines > start.input_lines or start.input_lines == 0:
        yield encode()


def _ranked_lines(chunk: EncodedChunk, scores: np.ndarray) -> str:
    """Each query's candidates sorted by score, descending; ties keep input order (stable sort)."""
    out, offset = [], 0
    for block in chunk.blocks:
        block_scores = scores[offset : offset + len(block.candidates)]
        offset += len(block.candidates)
        for i in np.argsort(-block_scores, kind="stable"):
            out.append(format_score_line(block.query_id, block.candidates[i].docid, block_scores[i]))
    return "".join(out)


def rerank_file(
    scorer: PairScorer,
    input_path: str,
    output_path: str,
    chunk_size: int = 20000,
    num_shards: int = 1,
    shard_index: int = 0,
    fingerprint: str | None = None,
) -> RerankStats:
    """Score every candidate of this shard's queries and write `qid<TAB>docid<TAB>score`, resuming if possible."""
    partial, progress_path = partial_paths(output_path)
    fingerprint = fingerprint or job_fingerprint(input_path, shards=(num_shards, shard_index))
    progress = _load_progress(progress_path, partial, fingerprint)
    started = time.perf_counter()
    checkpointing = 0.0
    with open(partial, "r+b" if progress.input_lines else "wb") as out:
        out.truncate(progress.output_bytes)
        out.seek(progress.output_bytes)
        chunks = prefetch(_encode_chunks(scorer, input_path, progress, chunk_size, num_shards, shard_index))
        with tqdm(total=None, initial=progress.candidates, desc="scoring", unit=" pairs") as bar:
            for chunk in chunks:
                scores = scorer.score_encoded(chunk.input_ids, chunk.token_type_ids)
                if len(scores) != sum(len(b.candidates) for b in chunk.blocks):
                    raise RuntimeError("internal error: a candidate did not get exactly one score")
                text = _ranked_lines(chunk, scores).encode("utf-8")
                durable_from = time.perf_counter()
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
                progress.input_lines, progress.blocks_seen = chunk.input_lines, chunk.blocks_seen
                progress.queries += len(chunk.blocks)
                progress.candidates += len(scores)
                progress.output_bytes += len(text)
                _save_progress(progress_path, progress)
                checkpointing += time.perf_counter() - durable_from
                bar.update(len(scores))
    if partial.stat().st_size != progress.output_bytes:
        raise RuntimeError(f"{partial}: size does not match the scored candidates; delete it and rerun")
    os.replace(partial, output_path)
    progress_path.unlink()
    stats = RerankStats(progress.queries, progress.candidates, time.perf_counter() - started, checkpointing)
    logger.info("scored %d candidates of %d queries in %.1fs", stats.candidates, stats.queries, stats.seconds)
    return stats
