"""`reranker_inference.py`: score a rerank input file with a cross-encoder (also under torchrun)."""

from __future__ import annotations

import os

from reranker.cli.common import exits_on_bad_input, parse_dataclasses, setup_logging
from reranker.inference.arguments import RerankArguments
from reranker.model.arguments import ModelArguments

# oneDNN, and ideep (PyTorch's wrapper around it) on top, each keep a compiled kernel (with packed weights) per
# batch shape, up to 1024 of them. Batches come in every length and size, so on a CPU both grew with the input:
# oneDNN's by ~7 MiB a shape (bf16: +600 MiB over 6000 pairs), ideep's by 220 MiB over 36,000 pairs (bf16, still
# growing). 16 of oneDNN's and 64 of ideep's cost no speed; 16 of ideep's cost 6% (one forward pass needs more).
# Both are read when the first kernel is built, i.e. after main() starts.
CPU_KERNEL_CACHES = {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": "16", "LRU_CACHE_CAPACITY": "64"}


@exits_on_bad_input
def main(argv: list[str] | None = None) -> None:
    for name, capacity in CPU_KERNEL_CACHES.items():
        os.environ.setdefault(name, capacity)
    setup_logging()
    model_args, args = parse_dataclasses((ModelArguments, RerankArguments), argv)
    from reranker.inference.driver import run_inference  # after parsing: --help stays fast

    run_inference(model_args, args)
