"""`reranker_inference.py`: score a rerank input file with a cross-encoder (also under torchrun)."""

from __future__ import annotations

import dataclasses

from reranker.cli.common import exits_on_bad_input, parse_dataclasses, setup_logging
from reranker.inference.arguments import INFERENCE_FLAGS, RerankArguments
from reranker.model.arguments import ModelArguments


@exits_on_bad_input(flag_names=INFERENCE_FLAGS)
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    model_args, args = parse_dataclasses((ModelArguments, RerankArguments), argv)
    from reranker.api import Reranker  # after parsing: --help stays fast

    reranker = Reranker.from_pretrained(
        model_args.model_name_or_path, tokenizer=model_args.tokenizer_name, config_name=model_args.config_name,
        cache_dir=model_args.cache_dir, revision=model_args.model_revision, q_max_len=args.q_max_len,
        p_max_len=args.p_max_len, passage_field_separator=args.passage_field_separator, device=args.device,
        precision=args.precision, batch_size=args.per_device_eval_batch_size,
        max_tokens_per_batch=args.max_tokens_per_batch, pad_to_multiple_of=args.pad_to_multiple_of,
        torch_compile=args.torch_compile, score_head=model_args.score_head, pair_template=model_args.pair_template,
        template_prefix=model_args.template_prefix, template_suffix=model_args.template_suffix,
        attn_implementation=model_args.attn_implementation, backend=args.backend, num_threads=args.num_threads,
    )  # fmt: skip
    reranker.rerank_file(
        args.encode_in_path, args.encoded_save_path, chunk_size=args.chunk_size, num_shards=args.encode_num_shard,
        shard_index=args.encode_shard_index, arguments={**dataclasses.asdict(model_args), **dataclasses.asdict(args)},
    )  # fmt: skip
