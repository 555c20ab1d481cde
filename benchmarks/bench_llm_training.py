"""CPU step time and peak RSS of decoder-reranker training: full fine-tuning, LoRA, LoRA + gradient checkpointing.

A random decoder (Qwen3 or Llama layout, `--layers`/`--hidden`; default the tests' tiny 2 x 64) with a byte-level
BPE tokenizer trained on the offline corpus, trained on real offline rows, each setting in its own process (so
peak RSS is its own). Step time: the median over the steps after the first two.

    python benchmarks/bench_llm_training.py --data ../shared/data/offline [--family qwen3] [--steps 12]
    python benchmarks/bench_llm_training.py --model /tmp/qwen3-0.6b-random --head yes_no --bf16  # on a GPU
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {
    "full fine-tuning": {},
    "LoRA r 8": {"lora_r": 8, "lora_alpha": 16},
    "LoRA r 8 + gradient checkpointing": {"lora_r": 8, "lora_alpha": 16, "gradient_checkpointing": True},
}


def run_one(args: argparse.Namespace) -> None:
    """Train one setting in this process; print {"step_s", "peak_rss_mib"} as JSON."""
    import torch
    from transformers import TrainerCallback

    from reranker.api import _parse_training_flags
    from reranker.training.driver import build_trainer

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times, self.start = [], 0.0

        def on_step_begin(self, *_, **__):
            self.start = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.times.append(time.perf_counter() - self.start)

    flags = dict(
        output_dir=args.output, model_name_or_path=args.model, dataset_name=args.rows, score_head=args.head,
        train_n_passages=args.group, q_max_len=32, p_max_len=128, per_device_train_batch_size=args.batch,
        max_steps=args.steps, learning_rate=1e-4, save_strategy="no", report_to="none", disable_tqdm=True,
        overwrite_output_dir=True, bf16=args.bf16, **json.loads(args.setting),
    )  # fmt: skip
    trainer = build_trainer(*_parse_training_flags(flags))
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cuda = round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None
    print(json.dumps({"step_s": statistics.median(timer.times[2:]), "peak_rss_mib": round(peak),
                      "cuda_max_allocated_mib": cuda}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/offline", help="The offline sample folder.")
    parser.add_argument("--family", default="qwen3", choices=("qwen3", "llama"))
    parser.add_argument("--head", default="last_token", choices=("last_token", "yes_no"))
    parser.add_argument("--model", help="A decoder folder (python -m reranker.random_model --decoder ...) instead.")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--bf16", action="store_true", help="bf16 (a GPU, or a CPU with native bf16).")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4, help="Groups a step.")
    parser.add_argument("--group", type=int, default=16, help="Passages a group.")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    for name in ("rows", "output", "setting"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 3:
        parser.error(f"--steps {args.steps}: at least 3 (the first two steps are warm-up, not timed)")
    if args.one:
        run_one(args)
        return
    from reranker.io.corpus import iter_corpus
    from reranker.model.random_model import build_corpus_tokenizer, save_random_decoder

    data = Path(args.data)
    work = Path(tempfile.mkdtemp(prefix="bench-llm-"))
    texts = [p.text for _, p in itertools.islice(iter_corpus(str(data / "corpus.jsonl.gz")), 3000)]
    heads = max(1, args.hidden // 16)
    model = args.model or save_random_decoder(
        work / "model",
        build_corpus_tokenizer(texts, args.family),
        args.family,
        layers=args.layers,
        hidden=args.hidden,
        heads=heads,
        kv_heads=heads,
    )
    rows = work / "train.jsonl"
    with gzip.open(data / "train.jsonl.gz", "rt") as source:
        rows.write_text("".join(itertools.islice(source, args.steps * args.batch)))
    shape = args.model or f"{args.family} {args.layers} layers x hidden {args.hidden}"
    print(f"{shape}, head {args.head}, {args.batch} groups x {args.group} a step, q/p 32/128, "
          f"{'bf16' if args.bf16 else 'fp32'}, {args.steps} steps")  # fmt: skip
    print("| setting | step (s) | peak RSS (MiB) | torch.cuda.max_memory_allocated (MiB) |\n|---|---|---|---|")
    for name, setting in SETTINGS.items():
        command = [sys.executable, __file__, "--one", "--model", str(model), "--rows", str(rows), "--output",
                   str(work / "out"), "--setting", json.dumps(setting), "--head", args.head, "--steps",
                   str(args.steps), "--batch", str(args.batch), "--group", str(args.group)]  # fmt: skip
        command += ["--bf16"] if args.bf16 else []
        child = subprocess.run(command, capture_output=True, text=True)
        if child.returncode:  # a failed setting shows why (a device run's log is all there is)
            sys.exit(f"{name} failed (exit {child.returncode}):\n{child.stderr[-4000:]}")
        result = json.loads(child.stdout.splitlines()[-1])
        print(f"| {name} | {result['step_s']:.3f} | {result['peak_rss_mib']} | {result['cuda_max_allocated_mib']} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
