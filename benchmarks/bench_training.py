"""Training throughput: fixed padding to q_max_len + p_max_len (the reference) against dynamic padding (one batch
padded to its longest pair), length-bucketed sub-batches, and one static shape under torch.compile.

    python benchmarks/bench_training.py --model DIR --train TRAIN_JSONL [--steps 20] [--bf16 | --fp16]
        [--per_device_train_batch_size 8 [16 32 ...]] [--train_n_passages 8] [--runs fixed dynamic buckets compiled]
        [--length_buckets 4] [--torch_compile_mode MODE] [--gradient_checkpointing] [--optim adamw_torch]
        [--profile_steps N] [--no_step_sync] [--reference_tflops 300]

The runs (`--runs`, default fixed dynamic buckets) use the same seed, data and Trainer at each groups-a-step size:
    fixed      every pair padded to q_max_len + p_max_len, one batch a step (the reference's padding);
    dynamic    one batch padded to its longest pair;
    buckets    `--length_buckets` sub-batches sorted by length, each padded to its longest pair;
    compiled   fixed padding under torch.compile (train_reranker.py's `--pad_to_max_length --dataloader_drop_last
               --torch_compile [--torch_compile_mode MODE]`): one shape every step, compiled once.
Every run drops an epoch's last partial batch (`--dataloader_drop_last`): each step has exactly the groups asked for
(the rates count them), and fixed padding has exactly one shape (the offline sample's 516 queries leave 4 groups in
an epoch's last step at 16 or 32 groups a step).

Prints, per run: groups/s over the whole training time (optimizer steps x groups a step / train_runtime, model load
excluded: BENCHMARKS.md's figure); the steady rate after the first min(10, steps // 2) steps, as ms a step and as a
multiple of the step's arithmetic (3 x the forward FLOPs of the padded pairs the run fed, at `--reference_tflops`,
by default the H200's model-alone bf16 rate); start-up (what the first steps took beyond the steady rate: the
compile of `compiled`); the losses (`compiled` draws its own dropout masks: with dropout on, its losses match the
others' only statistically; without, to float rounding). Then the learning rate that goes with each groups-a-step size
(`lr_for_groups`), the Trainer's default optimizer here, and last one line `speedup_vs_fixed_padding=X.XX` for the
library default on this device (`--length_buckets` unset: 4 sub-batches on a CPU, one batch on a GPU) at the first
size, when both ran. `--profile_steps N`: torch.profiler over N steps from step 10 of that run, its top operations
by device time (the profiled steps count in that run's steady rate).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import transformers  # noqa: E402
from profile_scoring import forward_flops  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from reranker.model.arguments import ModelArguments  # noqa: E402
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments  # noqa: E402
from reranker.training.driver import build_trainer, default_length_buckets  # noqa: E402
from reranker.training.trainer import RerankerTrainer  # noqa: E402

RUNS = ("fixed", "dynamic", "buckets", "compiled")
# recipes/reference.args (Tevatron v1's recipe): 8 groups a step at lr 5e-6
REFERENCE_GROUPS, REFERENCE_LR = 8, 5e-6


def lr_for_groups(groups: int) -> float:
    """The learning rate that goes with `groups` query groups a step (all devices and accumulation steps together):
    the reference's 5e-6 at 8 groups, scaled in proportion to the groups, the 10% warm-up kept.

    The two LCE recipes in recipes/README.md are set so: Tevatron v1, BERT-base, 8 groups of 8 at 5e-6; Pradeep et
    al. (ECIR 2022, castorini/replicate-lce), ELECTRA-base, 16 groups of 32 at 1e-5, both with 10% warm-up. Past 16
    groups it is the rule's extrapolation, not a published setting.
    """
    return REFERENCE_LR * groups / REFERENCE_GROUPS


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


class StepClock(TrainerCallback):
    """Wall-clock times of the training loop's start, of the end of step `warm` and of the last step, the device
    synchronised at each (three syncs a run, none in between: `--no_step_sync` keeps its meaning)."""

    def __init__(self, warm: int) -> None:
        self.warm, self.times = warm, {}

    def _mark(self, args, name: str) -> None:
        if args.device.type == "cuda":
            torch.cuda.synchronize()
        self.times[name] = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._mark(args, "begin")

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warm:
            self._mark(args, "warm")
        if state.global_step == state.max_steps:
            self._mark(args, "end")


class Result(NamedTuple):
    rate: float  # groups/s over train_runtime
    step_seconds: float  # steady time of a step, after the warm steps
    startup: float  # seconds the warm steps took beyond the steady rate
    step_flops: float  # mean training FLOPs of a step (3 x forward, padded pairs)
    losses: list[float]


def step_lengths(trainer: RerankerTrainer, steps: int) -> list[np.ndarray]:
    """The padded length of every pair of each of the first `steps` steps, from the run's own sampler, dataset and
    collator, replayed here (the dataloader workers' batches do not come back); epochs as the Trainer runs them."""
    args, sampler, size = trainer.args, trainer._get_train_sampler(), trainer.args.per_device_train_batch_size
    lengths, epoch = [], 0
    while len(lengths) < steps:
        sampler.set_epoch(epoch)
        keys = list(sampler)
        starts = range(0, len(keys) - size + 1 if args.dataloader_drop_last else len(keys), size)
        if not starts:
            raise ValueError(f"{len(keys)} training queries make no step of {size} groups")
        for start in starts[: steps - len(lengths)]:
            batch = trainer.data_collator([trainer.train_dataset[key] for key in keys[start : start + size]])
            lengths.append(np.concatenate([np.full(len(b["input_ids"]), b["input_ids"].shape[1])
                                           for b in batch.get("buckets", [batch])]))  # fmt: skip
        epoch += 1
    return lengths


def run(args, name: str, groups: int, output_dir: str, profile_steps: int = 0) -> Result:
    trainer = build_trainer(
        ModelArguments(model_name_or_path=args.model),
        TrainDataArguments(
            dataset_name=args.train,
            train_n_passages=args.train_n_passages,
            pad_to_max_length=name in ("fixed", "compiled"),
            length_buckets=args.length_buckets if name == "buckets" else 1,
        ),
        RerankerTrainingArguments(
            output_dir=output_dir,
            max_steps=args.steps,
            per_device_train_batch_size=groups,
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
            dataloader_drop_last=True,
            optim=args.optim,
            torch_compile=name == "compiled",
            torch_compile_mode=args.torch_compile_mode if name == "compiled" else None,
        ),  # fmt: skip
    )
    clock = StepClock(min(10, args.steps // 2))
    trainer.add_callback(clock)
    if profile_steps:
        trainer.add_callback(ProfileSteps(10, profile_steps))
    metrics = trainer.train().metrics
    times, warm = clock.times, clock.warm
    step_seconds = (times["end"] - times["warm"]) / (args.steps - warm)
    model = trainer.accelerator.unwrap_model(trainer.model)
    flops = 3 * np.mean([forward_flops(model, lengths) for lengths in step_lengths(trainer, args.steps)])
    return Result(
        args.steps * groups / metrics["train_runtime"], step_seconds,
        times["warm"] - times["begin"] - warm * step_seconds, float(flops),
        [h["loss"] for h in trainer.state.log_history if "loss" in h],
    )  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--per_device_train_batch_size", type=int, nargs="+", default=[8],
                        help="Groups a step; several sizes run one after the other (lr_for_groups: the learning "
                        "rate each goes with; this bench trains at 1e-4: speed does not depend on it).")  # fmt: skip
    parser.add_argument("--train_n_passages", type=int, default=8)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS[:3]))
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--length_buckets", type=int, default=4)
    parser.add_argument("--torch_compile_mode", default=None,
                        help="torch.compile's mode for the `compiled` run (default: its default; reduce-overhead: "
                        "CUDA graphs).")  # fmt: skip
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--dataloader_num_workers", type=int, default=0)
    parser.add_argument("--optim", default="adamw_torch")
    parser.add_argument("--profile_steps", type=int, default=0)
    parser.add_argument("--no_step_sync", action="store_true",
                        help="Log the loss once, at the end, and skip the Trainer's NaN/inf check: both read the "
                        "loss on the host every step (train_reranker.py: --logging_steps N "
                        "--logging_nan_inf_filter False).")  # fmt: skip
    parser.add_argument("--reference_tflops", type=float, default=300.0,
                        help="The rate a step's arithmetic is timed at: BERT-base alone, bf16 autocast, batches "
                        "of 512-2048, ran at 260-297 TFLOP/s on an H200 (BENCHMARKS.md, 'GPU: one NVIDIA "
                        "H200').")  # fmt: skip
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be >= 2 (the steady rate is timed after the first steps)")
    return args


def report(name: str, groups: int, result: Result, reference_tflops: float) -> str:
    seconds, flops = result.step_seconds, result.step_flops
    return (
        f"{name:34s} {groups:3d} groups: {result.rate:8.2f} groups/s; steady {groups / seconds:8.2f} groups/s, "
        f"{seconds * 1e3:7.1f} ms a step = {seconds * reference_tflops * 1e12 / flops:5.2f}x its arithmetic "
        f"({flops / 1e12:.3f} TFLOP, {flops / seconds / 1e12:6.1f} TFLOP/s); start-up {result.startup:5.1f} s; "
        f"losses {json.dumps([round(x, 4) for x in result.losses])}"
    )


def main() -> None:
    args = parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    default = default_length_buckets(device)
    ours = "dynamic" if default == 1 else "buckets"
    mode = f" ({args.torch_compile_mode})" if args.torch_compile_mode else ""
    labels = {"fixed": "fixed padding (reference)", "dynamic": "dynamic padding, one batch",
              "buckets": f"dynamic padding, {args.length_buckets} length buckets",
              "compiled": f"fixed padding, compiled{mode}"}  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for groups in args.per_device_train_batch_size:
            for name in args.runs:
                profiled = args.profile_steps if name == ours and groups == args.per_device_train_batch_size[0] else 0
                results[name, groups] = run(args, name, groups, f"{tmp}/{name}-{groups}", profiled)
    for (name, groups), result in results.items():
        print(report(labels[name], groups, result, args.reference_tflops))
    for groups in args.per_device_train_batch_size:
        print(f"{groups} groups a step: learning rate {lr_for_groups(groups):.2g} (the reference's "
              f"{REFERENCE_LR:.0e} at {REFERENCE_GROUPS}, in proportion to the groups: Tevatron v1 8 groups 5e-6, "
              "Pradeep et al. 16 groups 1e-5; lr_for_groups); this bench trains at 1e-4")  # fmt: skip
    print(f"library default on {device.type}: {default} length bucket(s); optimizer {args.optim} (transformers "
          f"{transformers.__version__}'s default here: {RerankerTrainingArguments.optim}); "
          f"{'no' if args.no_step_sync else 'a'} host sync a step (loss log, NaN check)")  # fmt: skip
    first = args.per_device_train_batch_size[0]
    if (ours, first) in results and ("fixed", first) in results:
        print(f"speedup_vs_fixed_padding={results[ours, first].rate / results['fixed', first].rate:.2f}")


if __name__ == "__main__":
    main()
