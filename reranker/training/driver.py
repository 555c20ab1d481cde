"""The training driver: data, model, Trainer, automatic resume, final save."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import set_seed
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from reranker.distributed import leave_process_group
from reranker.io.errors import ParameterError, literal
from reranker.io.summary import write_summary
from reranker.io.train_rows import load_train_dataset, rows_have_teacher_scores
from reranker.model.arguments import ModelArguments
from reranker.model.backbone import ScoreHead, load_scoring_model, pair_encoder_for, resolve_score_head
from reranker.model.heads import max_lengths
from reranker.model.loading import RAW_LOGIT_ACTIVATION, load_tokenizer
from reranker.model.lora import add_lora, lora_target_modules, save_merged
from reranker.model.precision import autocast_dtype, head_in_fp32
from reranker.model.segment_cosine import BertForSegmentCosine
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments, sampling_seed
from reranker.training.collator import GroupedTrainCollator
from reranker.training.dataset import GroupedTrainDataset
from reranker.training.evaluation import RerankEvaluator
from reranker.training.model_card import write_model_card
from reranker.training.trainer import RerankerTrainer

logger = logging.getLogger(__name__)


def _is_complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint without a readable one was cut short."""
    try:
        json.loads((checkpoint / TRAINER_STATE_NAME).read_text())
        return True
    except (OSError, ValueError):
        return False


def newest_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest `checkpoint-N` folder that was written completely (a kill can interrupt a save)."""
    checkpoints = [p for p in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()]
    for checkpoint in sorted(checkpoints, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if _is_complete(checkpoint):
            return os.fspath(checkpoint)
        logger.warning("skipping %s: incomplete (the run was stopped while saving it)", checkpoint)
    return None


def resolve_resume_checkpoint(args: RerankerTrainingArguments) -> str | None:
    """The checkpoint to resume from: the one given, else the newest in output_dir (as run_glue.py does).

    A non-empty output_dir without checkpoints is refused unless --overwrite_output_dir, so that a typo cannot
    mix a new run into an old one; --overwrite_output_dir also ignores existing checkpoints.
    """
    if args.resume_from_checkpoint:
        if not Path(args.resume_from_checkpoint).is_dir():
            raise ParameterError(f"{{0}} {literal(args.resume_from_checkpoint)}: no such checkpoint folder",
                                 "resume_from_checkpoint")  # fmt: skip
        return args.resume_from_checkpoint
    output_dir = Path(args.output_dir)
    if args.overwrite_output_dir or not output_dir.is_dir() or not any(output_dir.iterdir()):
        return None
    last = newest_complete_checkpoint(output_dir)
    if last is None:
        raise ParameterError(
            f"{{0}} {literal(output_dir)} is not empty and holds no checkpoint; use {{1}} to write there",
            "output_dir", "overwrite_output_dir",
        )  # fmt: skip
    logger.info("resuming from %s (give --overwrite_output_dir to start afresh)", last)
    return last


def _head_name(trainer: RerankerTrainer) -> str:
    if trainer.score_head.name:
        return trainer.score_head.name
    return (
        "segment_cosine"
        if isinstance(trainer.accelerator.unwrap_model(trainer.model), BertForSegmentCosine)
        else "cls"
    )


def default_length_buckets(device: torch.device) -> int:
    """Sub-batches a step runs in when `--length_buckets` is not given: 4 on a CPU, where the padded tokens are the
    cost; 1 on a GPU, where a step of 8 groups x 8 waits on kernel launches (H200: 136 groups/s in one batch,
    49 in four)."""
    return 1 if device.type == "cuda" else 4


def build_trainer(
    model_args: ModelArguments, data_args: TrainDataArguments, training_args: RerankerTrainingArguments
) -> RerankerTrainer:
    """Everything `train` needs, assembled; separate so tests and benchmarks can drive the Trainer."""
    tokenizer = load_tokenizer(
        model_args.tokenizer_name or model_args.model_name_or_path, model_args.cache_dir, model_args.model_revision
    )
    head = resolve_score_head(
        model_args.model_name_or_path, tokenizer, model_args.score_head, model_args.template, model_args.config_name,
        model_args.cache_dir, model_args.model_revision,
    )  # fmt: skip
    # the lengths the run uses (an LLM head's defaults differ), as the model card and summary record them
    data_args.q_max_len, data_args.p_max_len = max_lengths(data_args.q_max_len, data_args.p_max_len, head.lengths)
    model = _load_model(model_args, training_args, head)
    with training_args.main_process_first(desc="loading training data"):
        rows = load_train_dataset(
            data_args.dataset_name, data_args.dataset_split, data_args.dataset_revision, data_args.data_cache_dir
        )
    loss = training_args.ranking_loss
    if loss.needs_teacher and not rows_have_teacher_scores(rows):
        raise ParameterError(
            f"{{0}} {literal(training_args.loss)} needs teacher scores, and {literal(data_args.dataset_name)} has "
            "passages without a 'score' (add them with python -m reranker.teacher_scores)", "loss",
        )  # fmt: skip
    dataset = GroupedTrainDataset(
        rows,
        data_args.train_n_passages,
        sampling_seed(training_args),
        data_args.positive_passage_no_shuffle,
        data_args.negative_passage_no_shuffle,
        data_args.dataset_name,
    )
    encoder = pair_encoder_for(head, tokenizer, data_args.q_max_len, data_args.p_max_len,
                               data_args.passage_field_separator)  # fmt: skip
    evaluator = None
    if data_args.eval_rerank_file:
        evaluator = RerankEvaluator(
            data_args.eval_rerank_file, data_args.eval_qrels, encoder, training_args.per_device_eval_batch_size
        )
    return RerankerTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        eval_dataset=evaluator.blocks if evaluator else None,
        data_collator=GroupedTrainCollator(
            encoder,
            pad_to_max_length=data_args.pad_to_max_length,
            length_buckets=data_args.length_buckets or default_length_buckets(training_args.device),
            pairs_per_forward=training_args.pairs_per_forward,
        ),  # fmt: skip
        processing_class=tokenizer,
        group_size=data_args.train_n_passages,
        score_head=head,
        loss=loss,
        rerank_evaluator=evaluator,
    )


def _load_model(model_args: ModelArguments, training_args: RerankerTrainingArguments, head: ScoreHead):
    """The model to train: with LoRA adapters when --lora_r > 0 (its frozen weights in bf16 when bf16 is asked
    for: they get no optimizer state, so nothing needs them in fp32)."""
    targets = None
    if training_args.lora_r:  # before any weights are read: an unknown family fails fast
        targets = lora_target_modules(head.config, training_args.lora_target_modules, head.decoder,
                                      model_args.model_name_or_path)  # fmt: skip
    bf16 = training_args.bf16 and autocast_dtype("bf16", training_args.device) is not None
    model = load_scoring_model(
        model_args.model_name_or_path, head, model_args.config_name, model_args.cache_dir, model_args.model_revision,
        dtype=torch.bfloat16 if bf16 and head.decoder and targets else None,
        attn_implementation=model_args.attn_implementation, dropout=training_args.dropout,
        cross_attention_bias=training_args.cross_attention_bias, logit_scale=training_args.logit_scale,
        fixed_logit_scale=training_args.fixed_logit_scale,
    )  # fmt: skip
    if not head.decoder:
        head_in_fp32(model)  # fp16/bf16 logits would round the loss's inputs (decoder heads compute in fp32)
    model.config.sentence_transformers = {**getattr(model.config, "sentence_transformers", {}), **RAW_LOGIT_ACTIVATION}
    if targets:
        model = add_lora(model, training_args.lora_r, training_args.lora_alpha, training_args.lora_dropout, targets,
                         head.name)  # fmt: skip
    return model


def run_training(
    model_args: ModelArguments, data_args: TrainDataArguments, training_args: RerankerTrainingArguments
) -> Path:
    """Train a cross-encoder and save it (model, tokenizer, model card, summary) to output_dir; return that folder.
    (`reranker.train` is the documented entry point.)"""
    resume_from = resolve_resume_checkpoint(training_args)
    set_seed(training_args.seed)
    started = time.perf_counter()
    trainer = build_trainer(model_args, data_args, training_args)
    result = trainer.train(resume_from_checkpoint=resume_from)
    if trainer.rerank_evaluator is not None and training_args.eval_strategy == "no":
        trainer.evaluate()  # no evaluation during training was asked for: evaluate the final model once
    trainer.save_model()
    trainer.save_state()
    if trainer.is_world_process_zero():
        if training_args.merge_lora:
            save_merged(trainer.model, training_args.output_dir)
        queries = len(trainer.train_dataset)
        write_model_card(training_args.output_dir, model_args, data_args, training_args, trainer.state, queries,
                         _head_name(trainer))  # fmt: skip
        groups = trainer.state.global_step * training_args.per_device_train_batch_size * training_args.world_size
        write_summary(
            training_args.output_dir, "train", {**asdict(model_args), **asdict(data_args),
                                                **training_args.to_dict()},
            queries=queries, steps=trainer.state.global_step, epochs=trainer.state.epoch,
            resumed_from=resume_from, train_loss=result.training_loss, seconds=round(time.perf_counter() - started, 3),
            groups_per_second=round(groups / max(result.metrics["train_runtime"], 1e-9), 3),
        )  # fmt: skip
    leave_process_group()
    return Path(training_args.output_dir)
