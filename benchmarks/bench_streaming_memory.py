"""Peak memory of the inference stage does not grow with its input.

    python benchmarks/bench_streaming_memory.py --model DIR --input RERANK_JSONL [--times 10] [--bf16]

Scores the input, then a file `--times` times larger (the input repeated, query ids suffixed so every query
stays distinct), each in its own `reranker_inference.py` process, and prints each process's peak RSS and
`rss_ratio=X.XX` (large / small).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_scoring import read_pairs, write_input  # this script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mib(args, input_path: Path, output_path: Path) -> float:
    command = [sys.executable, str(ROOT / "reranker_inference.py"), "--model_name_or_path", args.model,
               "--encode_in_path", str(input_path), "--encoded_save_path", str(output_path)]  # fmt: skip
    command += ["--bf16"] if args.bf16 else []
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"inference failed on {input_path}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, large = Path(args.input), Path(tmp) / "large.jsonl"
        pairs = read_pairs(args.input, None, args.times)
        write_input(pairs, large)
        small_rss = peak_rss_mib(args, small, Path(tmp) / "small.out")
        large_rss = peak_rss_mib(args, large, Path(tmp) / "large.out")
    print(f"input x1:  peak RSS {small_rss:7.1f} MiB")
    print(f"input x{args.times} ({len(pairs)} pairs): peak RSS {large_rss:7.1f} MiB")
    print(f"rss_ratio={large_rss / small_rss:.2f}")


if __name__ == "__main__":
    main()
