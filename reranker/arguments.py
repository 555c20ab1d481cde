"""Command-line arguments of the training and inference stages (flag names are the reference's)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from reranker.errors import UsageError
from reranker.precision import cpu_supports_bf16

logger = logging.getLogger(__name__)


def opt(default, help: str):
    """A dataclass field with a default and the help text HfArgumentParser shows."""
    return field(default=default, metadata={"help": help})


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Model directory or Hub name to start from or to score with."})
    config_name: str | None = opt(None, "Config to use instead of the model's own.")
    tokenizer_name: str | None = opt(None, "Tokenizer to use instead of the model's.")
    cache_dir: str | None = opt(None, "Where Hub downloads are cached.")
    model_revision: str | None = opt(None, "Hub revision (branch, tag or commit).")


@dataclass
class EncodingArguments:
    q_max_len: int = opt(16, "Query tokens kept (before the pair's special tokens).")
    p_max_len: int = opt(128, "Passage tokens kept (title + text).")
    passage_field_separator: str = opt(" ", "Text between a passage's title and text.")

    def __post_init__(self) -> None:
        if self.q_max_len < 1:
            raise UsageError(f"--q_max_len must be >= 1, got {self.q_max_len}")
        if self.p_max_len < 1:
            raise UsageError(f"--p_max_len must be >= 1, got {self.p_max_len}")


@dataclass
class TrainDataArguments(EncodingArguments):
    dataset_name: str = opt(
        None, "Training data: a Hub dataset (Tevatron/msmarco-passage) or a local .jsonl[.gz] file/folder."
    )
    dataset_revision: str | None = opt(None, "Hub revision of the training data.")
    dataset_split: str = opt("train", "Split of a Hub dataset to train on.")
    train_n_passages: int = opt(8, "Passages per query group: 1 positive + n-1 negatives.")
    positive_passage_no_shuffle: bool = opt(False, "Always use the first positive.")
    negative_passage_no_shuffle: bool = opt(False, "Use the first negatives in order.")
    length_buckets: int = opt(4, "Sub-batches of similar length per step (1: one batch padded to its longest pair).")
    pad_to_max_length: bool = opt(
        False, "Pad every pair to q_max_len + p_max_len (the reference) instead of dynamically."
    )
    data_cache_dir: str | None = opt(None, "Where the Arrow cache of the data goes.")
    eval_rerank_file: str | None = opt(None, "Rerank input JSONL to evaluate on (every eval_steps, or at the end).")
    eval_qrels: str | None = opt(None, "Qrels of --eval_rerank_file.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.dataset_name:
            raise UsageError("--dataset_name is required (a Hub dataset or a local .jsonl[.gz] file or folder)")
        if self.train_n_passages < 2:
            raise UsageError(f"--train_n_passages must be >= 2 (1 positive + negatives), got {self.train_n_passages}")
        if self.length_buckets < 1:
            raise UsageError(f"--length_buckets must be >= 1, got {self.length_buckets}")
        if bool(self.eval_rerank_file) != bool(self.eval_qrels):
            raise UsageError("--eval_rerank_file and --eval_qrels go together")


@dataclass
class RerankerTrainingArguments(TrainingArguments):
    """transformers' TrainingArguments plus the reference's flags that transformers 5 dropped."""

    overwrite_output_dir: bool = opt(False, "Start afresh even if output_dir holds checkpoints or other files.")
    warmup_ratio: float = opt(0.1, "Share of the steps spent warming up (if no warmup_steps).")
    remove_unused_columns: bool = opt(False, "Keep False: groups are built from raw rows.")

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_ratio < 1:
            raise UsageError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.warmup_steps == 0:
            self.warmup_steps = self.warmup_ratio
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = "mrr_at_10"
        if not torch.cuda.is_available():
            # Said explicitly, transformers allows bf16 on the CPU and runs torchrun ranks as gloo DDP (without
            # it each rank would train alone); pinning needs an accelerator.
            self.use_cpu = True
            self.dataloader_pin_memory = False
        if not torch.cuda.is_available() and (self.fp16 or self.bf16):
            if not (self.bf16 and cpu_supports_bf16()):
                logger.warning(f"--{'fp16' if self.fp16 else 'bf16'}: no CUDA GPU (or native bf16); training in fp32")
                self.fp16 = self.bf16 = False
        super().__post_init__()


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
