"""Training configs side by side: peak memory and time per step (large groups with gradient caching, losses).

    python benchmarks/bench_train_configs.py --model DIR --train TRAIN_JSONL [--steps 4] [--bf16] [--repeat 1]
        [--configs 8:none:lce 32:64:lce 32:none:lce]

Each config `GROUP:PAIRS_PER_FORWARD[:LOSS[:WEIGHTS[:T[:HEAD]]]]` (`none`: no caching; default loss lce; HEAD: a
`--score_head`, default the model's own; q/p 16/128, lr 1e-4, 8 groups a step), or `@FILE`, a recipe's flags file
(`@recipes/distill.args`: all of its flags, the precision set by `--bf16` here so that recipes compare at one
precision), trains `--steps` steps in a fresh process (so that each peak is its own; `--repeat` runs the list that
many times, for timings that alternate) and reports: on a CUDA device `torch.cuda.max_memory_allocated`; on a CPU
the peak RSS (`ru_maxrss`) and the growth of the peak over the RSS just before training (the training's own working
memory: activations, gradients, optimizer state). Last, one line per config against the first:
`peak_ratio_vs_first=...`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def config_arguments(args, output_dir: str) -> tuple:
    """The model, data and training arguments of one config."""
    from reranker.cli.common import parse_dataclasses
    from reranker.model.arguments import ModelArguments
    from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments

    common = ["--model_name_or_path", args.model, "--dataset_name", args.train, "--output_dir", output_dir,
              "--max_steps", str(args.steps), "--seed", "1", "--save_strategy", "no", "--report_to", "none",
              "--disable_tqdm", "true", "--logging_steps", "1", "--fp16", "false",
              "--bf16", str(args.bf16)]  # fmt: skip
    if args.config.startswith("@"):
        flags = ["--args_file", args.config[1:], *common]
    else:
        group, per_forward, *settings = args.config.split(":")
        names = ("--loss", "--loss_weights", "--distill_temperature", "--score_head")
        flags = [*common, "--train_n_passages", group, "--per_device_train_batch_size", "8", "--learning_rate",
                 "1e-4", *([] if per_forward == "none" else ["--pairs_per_forward", per_forward]),
                 *(item for pair in zip(names, settings, strict=False) for item in pair)]  # fmt: skip
    types = (ModelArguments, TrainDataArguments, RerankerTrainingArguments)
    return parse_dataclasses(types, flags)


def measure(args) -> dict:
    """One config, in this process (the child)."""
    import torch

    from reranker.inference.heap import rss_mib
    from reranker.training.driver import build_trainer

    with tempfile.TemporaryDirectory() as output_dir:
        trainer = build_trainer(*config_arguments(args, output_dir))
        cuda = trainer.args.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        before = rss_mib()
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"config": args.config, "seconds_per_step": seconds / args.steps, "rss_before_mib": before,
              "peak_rss_mib": peak_rss, "peak_growth_mib": peak_rss - before}  # fmt: skip
    if cuda:
        result["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--configs", nargs="+", default=["8:none", "32:64", "32:none"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--config", help=argparse.SUPPRESS)  # the child's one config
    args = parser.parse_args()
    if args.config:
        print(json.dumps(measure(args)))
        return
    results = []
    for config in args.configs * args.repeat:
        command = [sys.executable, __file__, "--model", args.model, "--train", args.train, "--steps", str(args.steps),
                   "--config", config, *(["--bf16"] if args.bf16 else [])]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    key = "max_memory_allocated_mib" if "max_memory_allocated_mib" in results[0] else "peak_growth_mib"
    for result in results:
        print(
            f"{result['config']}: {key} {result[key]:.0f}  peak_rss {result['peak_rss_mib']:.0f} MiB  "
            f"{result['seconds_per_step']:.2f} s/step  peak_ratio_vs_first={result[key] / results[0][key]:.2f}"
        )


if __name__ == "__main__":
    main()
