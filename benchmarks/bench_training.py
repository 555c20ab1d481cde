"""Training throughput: ours (length-bucketed sub-batches) against fixed padding to q_max_len + p_max_len (the
reference) and against plain dynamic padding (one batch padded to its longest pair).

    python benchmarks/bench_training.py --model DIR --train TRAIN_JSONL [--steps 20] [--bf16 | --fp16]
        [--per_device_train_batch_size 8] [--train_n_passages 8] [--length_buckets 4] [--gradient_checkpointing]

The runs use the same seed, data and Trainer; only the collator's padding differs. Prints groups/s for each
(optimizer steps x groups per step / training time, model load excluded), the losses of each run, and last
one line `speedup_vs_fixed_padding=X.XX`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker.model.arguments import ModelArguments  # noqa: E402
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments  # noqa: E402
from reranker.training.driver import build_trainer  # noqa: E402


def run(args, pad_to_max_length: bool, length_buckets: int, output_dir: str) -> tuple[float, list[float]]:
    trainer = build_trainer(
        ModelArguments(model_name_or_path=args.model),
        TrainDataArguments(
            dataset_name=args.train,
            train_n_passages=args.train_n_passages,
            pad_to_max_length=pad_to_max_length,
            length_buckets=length_buckets,
        ),
        RerankerTrainingArguments(
            output_dir=output_dir,
            max_steps=args.steps,
            per_device_train_batch_size=args.per_device_train_batch_size,
            learning_rate=1e-4,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=42,
            bf16=args.bf16,
            fp16=args.fp16,
            gradient_checkpointing=args.gradient_checkpointing,
            dataloader_num_workers=args.dataloader_num_workers,
        ),  # fmt: skip
    )
    metrics = trainer.train().metrics
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return args.steps * args.per_device_train_batch_size / metrics["train_runtime"], losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--per_device_train_batch_size", type=int, default=8)
    parser.add_argument("--train_n_passages", type=int, default=8)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--length_buckets", type=int, default=4)
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--dataloader_num_workers", type=int, default=0)
    args = parser.parse_args()
    settings = {"fixed padding (reference)": (True, 1), "dynamic padding, one batch": (False, 1),
                f"ours, {args.length_buckets} length buckets": (False, args.length_buckets)}  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, (fixed, buckets)) in enumerate(settings.items()):
            results[name] = run(args, fixed, buckets, f"{tmp}/{number}")
    for name, (rate, losses) in results.items():
        print(f"{name:32s} {rate:8.2f} groups/s  losses {json.dumps([round(x, 4) for x in losses])}")
    rates = [rate for rate, _ in results.values()]
    print(f"speedup_vs_fixed_padding={rates[-1] / rates[0]:.2f}")


if __name__ == "__main__":
    main()
