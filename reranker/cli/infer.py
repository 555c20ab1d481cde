"""`reranker_inference.py`: score a rerank input file with a cross-encoder."""

from __future__ import annotations

import logging

from reranker.arguments import ModelArguments, RerankArguments
from reranker.cli.common import exits_on_bad_input, parse_dataclasses, setup_logging

logger = logging.getLogger(__name__)


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    model_args, args = parse_dataclasses((ModelArguments, RerankArguments), argv)
    import torch

    from reranker.modeling import load_cross_encoder, load_tokenizer
    from reranker.pair_encoding import PairEncoder
    from reranker.precision import autocast_dtype
    from reranker.rerank import job_fingerprint, rerank_file
    from reranker.scoring import PairScorer

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = autocast_dtype(args.fp16, args.bf16, device)
    tokenizer_name = model_args.tokenizer_name or model_args.model_name_or_path
    tokenizer = load_tokenizer(tokenizer_name, model_args.cache_dir, model_args.model_revision)
    model = load_cross_encoder(
        model_args.model_name_or_path, model_args.config_name, model_args.cache_dir, model_args.model_revision
    )
    if args.torch_compile:
        model = torch.compile(model, dynamic=True)
    encoder = PairEncoder(tokenizer, args.q_max_len, args.p_max_len, args.passage_field_separator)
    scorer = PairScorer(model, encoder, device, dtype, args.per_device_eval_batch_size, args.max_tokens_per_batch)
    fingerprint = job_fingerprint(
        args.encode_in_path,
        model=model_args.model_name_or_path,
        tokenizer=tokenizer_name,
        lengths=(args.q_max_len, args.p_max_len),
        separator=args.passage_field_separator,
        dtype=dtype,
        shards=(args.encode_num_shard, args.encode_shard_index),
    )
    rerank_file(
        scorer,
        args.encode_in_path,
        args.encoded_save_path,
        args.chunk_size,
        args.encode_num_shard,
        args.encode_shard_index,
        fingerprint,
    )
