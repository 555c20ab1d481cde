"""`reranker_inference.py`: score a rerank input file with a cross-encoder (also under torchrun)."""

from __future__ import annotations

import dataclasses

from reranker.cli.common import exits_on_bad_input, load_reranker, parse_dataclasses, setup_logging
from reranker.inference.arguments import INFERENCE_FLAGS, RerankArguments
from reranker.model.arguments import ModelArguments


@exits_on_bad_input(flag_names=INFERENCE_FLAGS)
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    model_args, args = parse_dataclasses((ModelArguments, RerankArguments), argv)
    reranker = load_reranker(model_args, args)
    reranker.rerank_file(
        args.encode_in_path, args.encoded_save_path, chunk_size=args.chunk_size, num_shards=args.encode_num_shard,
        shard_index=args.encode_shard_index, encode_workers=args.encode_workers,
        arguments={**dataclasses.asdict(model_args), **dataclasses.asdict(args)},
    )  # fmt: skip
