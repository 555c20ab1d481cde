"""`reranker_inference.py`: score a rerank input file with a cross-encoder (also under torchrun)."""

from __future__ import annotations

import os

from reranker.arguments import ModelArguments, RerankArguments
from reranker.cli.common import exits_on_bad_input, parse_dataclasses, setup_logging

# oneDNN keeps a compiled kernel (and packed weights) per batch shape, up to 1024 of them: with batches of
# every length that grew the process by ~7 MiB a shape (bf16 CPU: +600 MiB over 6000 pairs); 16 cost no speed.
ONEDNN_CACHE = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault(*ONEDNN_CACHE)  # read when oneDNN first builds a kernel, i.e. after this
    setup_logging()
    model_args, args = parse_dataclasses((ModelArguments, RerankArguments), argv)
    from reranker.inference import run_inference  # after parsing: --help stays fast

    run_inference(model_args, args)
