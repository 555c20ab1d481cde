"""Training throughput: fixed padding to q_max_len + p_max_len (the reference) against dynamic padding (one batch
padded to its longest pair) and length-bucketed sub-batches.

    python benchmarks/bench_training.py --model DIR --train TRAIN_JSONL [--steps 20] [--bf16 | --fp16]
        [--per_device_train_batch_size 8] [--train_n_passages 8] [--length_buckets 4] [--gradient_checkpointing]
        [--optim adamw_torch] [--profile_steps N] [--no_step_sync]

The runs use the same seed, data and Trainer; only the collator's padding differs. Prints groups/s for each
(optimizer steps x groups per step / training time, model load excluded), the losses of each run, and last
one line `speedup_vs_fixed_padding=X.XX` for the library's default on this device (`--length_buckets` unset: 4
sub-batches on a CPU, one batch on a GPU). `--profile_steps N`: torch.profiler over N steps from step 10 of that
run, its top operations by device time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from reranker.model.arguments import ModelArguments  # noqa: E402
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments  # noqa: E402
from reranker.training.driver import build_trainer, default_length_buckets  # noqa: E402


class ProfileSteps(TrainerCallback):
    """torch.profiler over `count` optimizer steps from step `first`; prints the top operations at the end."""

    def __init__(self, first: int, count: int) -> None:
        self.first, self.count, self.profiler = first, count, None

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.first:
            cuda = args.device.type == "cuda"
            self.profiler = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))
            self.profiler.__enter__()

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is not None and state.global_step == self.first + self.count:
            if args.device.type == "cuda":
                torch.cuda.synchronize()
            self.profiler.__exit__(None, None, None)
            key = "self_cuda_time_total" if args.device.type == "cuda" else "self_cpu_time_total"
            print(self.profiler.key_averages().table(sort_by=key, row_limit=20, max_name_column_width=60))
            self.profiler = None


def run(args, pad_to_max_length: bool, length_buckets: int, output_dir: str, profile_steps: int = 0):
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
            logging_steps=args.steps if args.no_step_sync else 1,
            logging_nan_inf_filter=not args.no_step_sync,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=42,
            bf16=args.bf16,
            fp16=args.fp16,
            gradient_checkpointing=args.gradient_checkpointing,
            dataloader_num_workers=args.dataloader_num_workers,
            optim=args.optim,
        ),  # fmt: skip
    )
    if profile_steps:
        trainer.add_callback(ProfileSteps(10, profile_steps))
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
    parser.add_argument("--optim", default="adamw_torch")
    parser.add_argument("--profile_steps", type=int, default=0)
    parser.add_argument("--no_step_sync", action="store_true",
                        help="Log the loss once, at the end, and skip the Trainer's NaN/inf check: both read the "
                        "loss on the host every step (train_reranker.py: --logging_steps N "
                        "--logging_nan_inf_filter False).")  # fmt: skip
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    default = default_length_buckets(device)
    settings = {"fixed padding (reference)": (True, 1), "dynamic padding, one batch": (False, 1),
                f"dynamic padding, {args.length_buckets} length buckets": (False, args.length_buckets)}  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, (fixed, buckets)) in enumerate(settings.items()):
            ours = not fixed and buckets == default
            results[name] = run(args, fixed, buckets, f"{tmp}/{number}", args.profile_steps if ours else 0)
    for name, (rate, losses) in results.items():
        print(f"{name:32s} {rate:8.2f} groups/s  losses {json.dumps([round(x, 4) for x in losses])}")
    ours = results["dynamic padding, one batch" if default == 1 else list(results)[-1]][0]
    print(f"library default on {device.type}: {default} length bucket(s); optimizer {args.optim}; "
          f"{'no' if args.no_step_sync else 'a'} host sync a step (loss log, NaN check)")  # fmt: skip
    print(f"speedup_vs_fixed_padding={ours / results['fixed padding (reference)'][0]:.2f}")


if __name__ == "__main__":
    main()
