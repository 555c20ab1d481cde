"""Command-line arguments of the training stage (flag names are the reference's)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers import TrainingArguments

from reranker.io.errors import ParameterError, check_at_least, check_fraction
from reranker.model.arguments import EncodingArguments, opt
from reranker.model.precision import cpu_supports_bf16
from reranker.training.grouping import check_group_size
from reranker.training.losses import LOSSES, RankingLoss

logger = logging.getLogger(__name__)


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
    length_buckets: int | None = opt(
        None,
        "Sub-batches of similar length per step (1: one batch padded to its longest pair). Default: 4 on a CPU, "
        "1 on a GPU (an H200 ran 8 groups x 8 2.8x faster in one batch than in 4: it waits on kernel launches).",
    )
    pad_to_max_length: bool = opt(
        False, "Pad every pair to q_max_len + p_max_len (the reference) instead of dynamically. With "
        "--dataloader_drop_last (an epoch's last partial batch dropped) every step has one shape, as --torch_compile "
        "wants: a new shape compiles again.",
    )  # fmt: skip
    data_cache_dir: str | None = opt(None, "Where the Arrow cache of the data goes.")
    eval_rerank_file: str | None = opt(None, "Rerank input JSONL to evaluate on (every eval_steps, or at the end).")
    eval_qrels: str | None = opt(None, "Qrels of --eval_rerank_file.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.dataset_name:
            raise ParameterError(
                "{0} is required (a Hub dataset or a local .jsonl[.gz] file or folder)", "dataset_name"
            )
        check_group_size(self.train_n_passages)
        check_at_least("length_buckets", self.length_buckets, 1)
        if bool(self.eval_rerank_file) != bool(self.eval_qrels):
            raise ParameterError("{0} and {1} go together", "eval_rerank_file", "eval_qrels")


@dataclass
class RerankerTrainingArguments(TrainingArguments):
    """transformers' TrainingArguments plus the reference's flags that transformers 5 dropped."""

    overwrite_output_dir: bool = opt(False, "Start afresh even if output_dir holds checkpoints or other files.")
    per_device_train_batch_size: int = opt(
        8, "Query groups a step on each device (the reference: 8, at --learning_rate 5e-6). With more groups a step "
        "(devices x this x --gradient_accumulation_steps), scale --learning_rate in proportion and keep the warm-up: "
        "the two LCE recipes we carry are set so (Tevatron v1: 8 groups, 5e-6; Pradeep et al.: 16 groups of 32, "
        "1e-5; recipes/README.md).",
    )  # fmt: skip
    warmup_ratio: float = opt(0.1, "Share of the steps spent warming up (if no warmup_steps).")
    remove_unused_columns: bool = opt(False, "Keep False: groups are built from raw rows.")
    loss: str = opt("lce", f"Loss, or losses mixed: comma-separated, of {', '.join(LOSSES)} (see README).")
    loss_weights: str | None = opt(None, "Weights (>= 0) of the --loss losses, comma-separated (default: 1 each).")
    distill_temperature: float = opt(1.0, "Temperature T of the kl loss (scaled by T^2).")
    pairs_per_forward: int | None = opt(
        None, "Run at most this many pairs through the model at once, with gradient caching (large groups; on one "
        "device, with DDP or DataParallel, not under DeepSpeed or FSDP).",
    )  # fmt: skip
    cross_attention_bias: float | None = opt(
        None, "segment_cosine: where the bias on attention between query and passage starts (default -4; learned)."
    )
    logit_scale: float | None = opt(
        None, "segment_cosine: where the factor its cosine is multiplied by starts (default 1/0.07 = 14.3, CLIP's; "
        "learned unless --fixed_logit_scale). The losses see scale x cosine; kl divides it by its T again.",
    )  # fmt: skip
    fixed_logit_scale: bool = opt(False, "segment_cosine: keep the logit scale where it starts (not learned).")
    lora_r: int = opt(
        0,
        "LoRA rank (peft): > 0 trains adapters on the attention and MLP layers and the score layer "
        "in full, the rest frozen; 0: full fine-tuning.",
    )
    lora_alpha: float = opt(64.0, "LoRA alpha (the adapters' scale is alpha / r; Tevatron's default 64).")
    lora_dropout: float = opt(0.1, "LoRA dropout (Tevatron's default 0.1).")
    lora_target_modules: str | None = opt(
        None, "Modules LoRA adapts, comma-separated. Default per family: q_proj,k_proj,v_proj,o_proj,gate_proj,"
        "up_proj,down_proj for decoders (Tevatron's RankLLaMA), query,key,value,dense for BERT-style encoders.",
    )  # fmt: skip
    merge_lora: bool = opt(False, "Write the final model with the adapters merged in, instead of the adapter folder.")
    dropout: float | None = opt(
        None, "Dropout probability of every dropout layer (default: the checkpoint's). 0 for distilling a student "
        "that starts as its teacher: dropout noise is most of its loss there (BENCHMARKS.md).",
    )  # fmt: skip

    def __post_init__(self) -> None:
        self.ranking_loss  # noqa: B018 (checks the loss settings)
        check_at_least("pairs_per_forward", self.pairs_per_forward, 1)
        self._check_lora()
        check_fraction("warmup_ratio", self.warmup_ratio)
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
                logger.warning(f"{'fp16' if self.fp16 else 'bf16'}: no CUDA GPU (or native bf16); training in fp32")
                self.fp16 = self.bf16 = False
        super().__post_init__()

    def _check_lora(self) -> None:
        check_at_least("lora_r", self.lora_r, 0)
        check_fraction("lora_dropout", self.lora_dropout)
        if self.lora_alpha <= 0:
            raise ParameterError(f"{{0}} must be > 0, got {self.lora_alpha}", "lora_alpha")
        if not self.lora_r:
            for name in ("lora_target_modules", "merge_lora"):
                if getattr(self, name):
                    raise ParameterError("{0} goes with {1} > 0", name, "lora_r")
        if self.lora_r and self.gradient_checkpointing and self.gradient_checkpointing_kwargs is None:
            # the frozen embeddings give reentrant checkpointing no input that needs a gradient: nothing would train
            self.gradient_checkpointing_kwargs = {"use_reentrant": False}

    @property
    def ranking_loss(self) -> RankingLoss:
        """The loss that `loss`, `loss_weights` and `distill_temperature` describe."""
        return RankingLoss.parse(self.loss, self.loss_weights, self.distill_temperature)


def sampling_seed(args: TrainingArguments) -> int:
    """The seed of the query order and the groups: `data_seed` if given, else `seed` (as transformers does)."""
    return args.data_seed if args.data_seed is not None else args.seed
