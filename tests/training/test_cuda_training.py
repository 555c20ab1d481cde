"""Training on a CUDA GPU: two steps in bf16 and in fp16 (the Trainer's autocast, fp16 loss scaling, the head in
fp32) move the weights with finite losses."""

from __future__ import annotations

import json
import math

import pytest
import torch

from reranker.model.arguments import ModelArguments
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments
from reranker.training.driver import build_trainer

pytestmark = pytest.mark.cuda

TEXTS = ["paris is the capital of france", "berlin is the capital of germany", "the eiffel tower is in paris",
         "rome is in italy and it is old", "lyon", "marseille is a port on the mediterranean sea",
         "a b c d e f g h i j k l", "the seine runs through paris"]  # fmt: skip


def write_rows(path, count: int = 8):
    """`count` Tevatron training rows of one positive and seven negatives each."""
    passages = [{"docid": str(i), "title": "", "text": text} for i, text in enumerate(TEXTS)]
    rows = [{"query_id": str(q), "query": f"where is paris {q}", "positive_passages": passages[q % 8 : q % 8 + 1],
             "negative_passages": passages[: q % 8] + passages[q % 8 + 1 :]} for q in range(count)]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_two_steps_on_cuda(tiny_model_dir, tmp_path, cuda_device, precision):
    trainer = build_trainer(
        ModelArguments(model_name_or_path=str(tiny_model_dir)),
        TrainDataArguments(
            dataset_name=str(write_rows(tmp_path / "train.jsonl")),
            train_n_passages=8,
            data_cache_dir=str(tmp_path / "cache"),
        ),  # fmt: skip
        RerankerTrainingArguments(
            output_dir=str(tmp_path / "out"),
            max_steps=2,
            per_device_train_batch_size=4,
            learning_rate=1e-3,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=1,
            **{precision: True},
        ),  # fmt: skip
    )
    assert trainer.args.device.type == "cuda" and getattr(trainer.args, precision)
    assert trainer.data_collator.length_buckets == 1  # the GPU default
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses), losses
    moved = [
        name for name, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[name].to(p.device))
    ]
    assert any(name.startswith("classifier") for name in moved) and any("encoder" in name for name in moved)
