"""The inference driver: model, scorer, sharding (flags and torchrun ranks), scoring, merging the ranks."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import torch

from reranker.distributed import World, barrier, process_group
from reranker.inference.arguments import RerankArguments
from reranker.inference.merge import merge_score_files
from reranker.inference.score_file import (
    RerankStats,
    Sharding,
    file_stamp,
    job_fingerprint,
    partial_paths,
    rerank_file,
)
from reranker.inference.scoring import PairScorer
from reranker.io.summary import read_summary, summary_path
from reranker.model.arguments import ModelArguments
from reranker.model.loading import load_cross_encoder, load_tokenizer
from reranker.model.pair_encoding import PairEncoder
from reranker.model.precision import autocast_dtype

logger = logging.getLogger(__name__)


def _stamp(name_or_path: str) -> dict | str:
    return file_stamp(name_or_path) if Path(name_or_path).exists() else name_or_path


def build_scorer(model_args: ModelArguments, args: RerankArguments, device: torch.device) -> PairScorer:
    dtype = autocast_dtype(args.fp16, args.bf16, device)
    tokenizer = load_tokenizer(model_args.tokenizer_name or model_args.model_name_or_path, model_args.cache_dir,
                               model_args.model_revision)  # fmt: skip
    model = load_cross_encoder(
        model_args.model_name_or_path, model_args.config_name, model_args.cache_dir, model_args.model_revision
    )
    if args.torch_compile:
        model = torch.compile(model, dynamic=True)
    encoder = PairEncoder(tokenizer, args.q_max_len, args.p_max_len, args.passage_field_separator)
    return PairScorer(model, encoder, device, dtype, args.per_device_eval_batch_size, args.max_tokens_per_batch,
                      args.pad_to_multiple_of)  # fmt: skip


def job_of(model_args: ModelArguments, args: RerankArguments, scorer: PairScorer) -> str:
    """Everything that determines the scores: input file, model and tokenizer files, encoding, precision, padding."""
    return job_fingerprint(
        input=file_stamp(args.encode_in_path),
        model=_stamp(model_args.model_name_or_path),
        tokenizer=_stamp(model_args.tokenizer_name or model_args.model_name_or_path),
        revision=model_args.model_revision,
        lengths=(args.q_max_len, args.p_max_len),
        separator=args.passage_field_separator,
        dtype=scorer.dtype,
        head="fp32",  # since the head runs in fp32 under autocast: files scored before differ
        padding=scorer.pad_to_multiple_of,
    )


def _remove_with_summary(path: Path) -> None:
    for leftover in (path, summary_path(path), *partial_paths(path)):
        leftover.unlink(missing_ok=True)


def run_inference(model_args: ModelArguments, args: RerankArguments) -> RerankStats | None:
    """Score `--encode_in_path` into `--encoded_save_path`. Under torchrun every rank scores its chunks into
    `OUT.rankR`, then rank 0 merges them into OUT (byte-identical to a single-process run) and removes them."""
    world = World.from_environment()
    device = world.device(args.device)
    scorer = build_scorer(model_args, args, device)
    job = job_of(model_args, args, scorer)
    levels = ((args.encode_num_shard, args.encode_shard_index),) if args.encode_num_shard > 1 else ()
    arguments = {**dataclasses.asdict(model_args), **dataclasses.asdict(args)}
    if world.size == 1:
        return rerank_file(scorer, args.encode_in_path, args.encoded_save_path, args.chunk_size, Sharding(levels),
                           job, arguments)  # fmt: skip
    final = Path(args.encoded_save_path)
    final_fingerprint = job_fingerprint(job=job, sharding=levels, chunk_size=args.chunk_size)
    if final.exists() and (read_summary(final) or {}).get("fingerprint") == final_fingerprint:
        logger.info("%s is already complete for this job", final)
        return None
    rank_outputs = [final.with_name(f"{final.name}.rank{r}") for r in range(world.size)]
    with process_group(world):
        sharding = Sharding((*levels, (world.size, world.rank)))
        stats = rerank_file(scorer, args.encode_in_path, os.fspath(rank_outputs[world.rank]), args.chunk_size,
                            sharding, job, arguments)  # fmt: skip
        barrier()
        if world.rank == 0:
            merge_score_files(rank_outputs, final)
            for path in rank_outputs:
                _remove_with_summary(path)
        barrier()
    return stats
