"""Command-line arguments of the inference stage (flag names are the reference's)."""

from __future__ import annotations

from dataclasses import dataclass

from reranker.io.errors import UsageError
from reranker.model.arguments import EncodingArguments, opt


@dataclass
class RerankArguments(EncodingArguments):
    encode_in_path: str = opt(None, "Rerank input JSONL (from prepare_rerank_file.py).")
    encoded_save_path: str = opt(None, "Output: qid<TAB>docid<TAB>score lines.")
    dataset_name: str | None = opt(
        None, "Schema of the input: data_script.py (or json); the file is --encode_in_path."
    )
    output_dir: str | None = opt(None, "Accepted for compatibility; not used.")
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
    torch_compile: bool = opt(False, "Compile the model with torch.compile.")
    encode_num_shard: int = opt(1, "Split the queries into this many shards...")
    encode_shard_index: int = opt(0, "...and score this one (0-based).")
    chunk_size: int = opt(20000, "Candidates per chunk: sorted by length together, written (and resumable) together.")
    device: str | None = opt(None, "cuda, cuda:N or cpu (default: cuda if available).")
    dataloader_num_workers: int = opt(0, "Accepted for compatibility; not used.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.encode_in_path:
            raise UsageError("--encode_in_path is required")
        if not self.encoded_save_path:
            raise UsageError("--encoded_save_path is required")
        if self.dataset_name and not (self.dataset_name.endswith(".py") or self.dataset_name == "json"):
            raise UsageError(
                f"--dataset_name {self.dataset_name!r}: rerank inputs are local JSONL files given by --encode_in_path;"
                " use --dataset_name data_script.py (or json)"
            )
        if self.per_device_eval_batch_size < 1:
            raise UsageError(f"--per_device_eval_batch_size must be >= 1, got {self.per_device_eval_batch_size}")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise UsageError(f"--pad_to_multiple_of must be >= 1, got {self.pad_to_multiple_of}")
        if self.max_tokens_per_batch is not None and self.max_tokens_per_batch < self.q_max_len + self.p_max_len:
            raise UsageError("--max_tokens_per_batch must hold at least one pair of q_max_len + p_max_len tokens")
        if self.encode_num_shard < 1 or not 0 <= self.encode_shard_index < self.encode_num_shard:
            raise UsageError(
                f"--encode_shard_index must be in [0, {self.encode_num_shard}), got {self.encode_shard_index}"
            )
        if self.chunk_size < 1:
            raise UsageError(f"--chunk_size must be >= 1, got {self.chunk_size}")
        if self.fp16 and self.bf16:
            raise UsageError("--fp16 and --bf16 are mutually exclusive")
