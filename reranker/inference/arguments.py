"""Command-line arguments of the inference stage (flag names are the reference's)."""

from __future__ import annotations

from dataclasses import dataclass

from reranker.inference.chunks import check_chunk_size, check_sharding
from reranker.inference.runtimes import check_backend, check_num_threads
from reranker.inference.scoring import ScoringOptions, check_batching
from reranker.io.errors import ParameterError, check_at_least, literal, parameters_renamed
from reranker.model.arguments import EncodingArguments, opt
from reranker.model.heads import max_lengths
from reranker.model.precision import precision_name

# The library's names for the settings whose flags are the reference's
INFERENCE_FLAGS = {
    "batch_size": "per_device_eval_batch_size",
    "num_shards": "encode_num_shard",
    "shard_index": "encode_shard_index",
    "tokenizer": "tokenizer_name",
}


@dataclass
class ScoringArguments(EncodingArguments):
    """How pairs are batched and on what device and precision they are scored: the settings every stage that
    scores with a loaded `Reranker` shares (`reranker_inference.py`, `python -m reranker.serve`)."""

    per_device_eval_batch_size: int = opt(128, "Pairs per forward pass.")
    max_tokens_per_batch: int | None = opt(
        None, "Cap batches by padded tokens as well as by pairs (default: 4096 on a CPU, none on a GPU)."
    )
    pad_to_multiple_of: int | None = opt(
        None,
        "Batch pairs by length rounded up to this multiple, padded with an attention mask. Default: 8 on a GPU "
        "(fewer, fuller batches); 1 on a CPU (exact lengths: no padding, no mask, SDPA's fused kernel).",
    )
    fp16: bool = opt(False, "fp16 autocast on a GPU (fp32 on CPU); scores stay fp32.")
    bf16: bool = opt(False, "bf16 autocast on a GPU or a CPU with native bf16.")
    torch_compile: bool = opt(
        False, "Compile the model with torch.compile: one graph for all shapes (dynamic); with --fixed_shapes, one "
        "static graph per batch shape (each compiled when first met).",
    )  # fmt: skip
    device: str | None = opt(None, "cuda, cuda:N or cpu (default: cuda if available).")
    backend: str | None = opt(
        None, "torch, onnx or openvino (default: the backend of a folder written by python -m reranker.export, "
        "else torch).",
    )  # fmt: skip
    num_threads: int | None = opt(None, "CPU threads for scoring (default: all cores).")
    # GPU speed variants (issue 37), off until a GPU run picks the defaults; see ScoringOptions
    fixed_shapes: bool = opt(False, "A few batch shapes only: lengths to multiples of 32, partial batches filled.")
    device_mask: bool = opt(False, "Build the attention mask on the device (encoders on SDPA): no sync a batch.")
    cast_weights: bool = opt(False, "With --bf16/--fp16: weights in that dtype instead of autocast; head in fp32.")
    queue_ahead: bool = opt(False, "Queue the next chunk on the device before reading this chunk's scores.")
    causal_no_mask: bool = opt(False, "LLM rerankers: attend without the padding mask (causal; the pads come last).")

    def __post_init__(self) -> None:
        super().__post_init__()
        with parameters_renamed(INFERENCE_FLAGS):
            check_batching(self.per_device_eval_batch_size, self.max_tokens_per_batch, self.pad_to_multiple_of,
                           sum(max_lengths(self.q_max_len, self.p_max_len)))  # fmt: skip
            precision_name(self.fp16, self.bf16)
        check_backend(self.backend)
        check_num_threads(self.num_threads)

    @property
    def precision(self) -> str:
        return precision_name(self.fp16, self.bf16)

    @property
    def options(self) -> ScoringOptions:
        return ScoringOptions(self.fixed_shapes, self.device_mask, self.cast_weights, self.queue_ahead,
                              self.causal_no_mask)  # fmt: skip


@dataclass
class RerankArguments(ScoringArguments):
    encode_in_path: str = opt(None, "Rerank input JSONL (from prepare_rerank_file.py).")
    encoded_save_path: str = opt(None, "Output: qid<TAB>docid<TAB>score lines.")
    dataset_name: str | None = opt(
        None, "Schema of the input: data_script.py (or json); the file is --encode_in_path."
    )
    output_dir: str | None = opt(None, "Accepted for compatibility; not used.")
    encode_num_shard: int = opt(1, "Split the queries into this many shards...")
    encode_shard_index: int = opt(0, "...and score this one (0-based).")
    chunk_size: int = opt(20000, "Candidates per chunk: sorted by length together, written (and resumable) together.")
    encode_workers: int = opt(
        0, "Processes reading and tokenizing the input, each every N-th chunk (0: a thread); the same output. Off "
        "until a GPU run decides (issue 37).",
    )  # fmt: skip
    dataloader_num_workers: int = opt(0, "Accepted for compatibility; not used.")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("encode_in_path", "encoded_save_path"):
            if not getattr(self, name):
                raise ParameterError("{0} is required", name)
        if self.dataset_name and not (self.dataset_name.endswith(".py") or self.dataset_name == "json"):
            raise ParameterError(
                f"{{0}} {literal(repr(self.dataset_name))}: rerank inputs are local JSONL files given by {{1}}; use "
                "{0} data_script.py (or json)", "dataset_name", "encode_in_path",
            )  # fmt: skip
        with parameters_renamed(INFERENCE_FLAGS):
            check_sharding(self.encode_num_shard, self.encode_shard_index)
            check_chunk_size(self.chunk_size)
            check_at_least("encode_workers", self.encode_workers, 0)
