"""The Python API against the command line: `Reranker.predict` on the pairs of a rerank file, against
`reranker_inference.py` run in-process on that file, alternated in one process.

    python benchmarks/bench_api.py --model DIR --input RERANK_JSONL [--bf16] [--repeat 2] [--limit N]

`cli`: `reranker.cli.infer.main`, its pairs/s the one its summary records (scoring time: reading, tokenizing,
scoring and writing the file; the model load excluded). `api`: `Reranker.from_pretrained` once, then
`predict(pairs)` on the same pairs held in memory, timed around the call. Each round runs both, the order
alternating; it prints every timing, the medians, whether the two gave the same scores, and last one line
`api_vs_cli=X.XXX` (the ratio of median pairs/s).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker import Reranker  # noqa: E402
from reranker.cli.infer import main as infer_main  # noqa: E402
from reranker.io.rerank_input import iter_query_blocks  # noqa: E402
from reranker.io.summary import read_summary  # noqa: E402


def run_cli(args, input_path: str, output: Path) -> tuple[float, dict]:
    flags = ["--model_name_or_path", args.model, "--encode_in_path", input_path, "--encoded_save_path", str(output)]
    for suffix in ("", ".summary.json"):
        Path(f"{output}{suffix}").unlink(missing_ok=True)
    assert infer_main([*flags, *(["--bf16"] if args.bf16 else [])]) == 0
    rows = (line.split("\t") for line in output.read_text().splitlines())
    return read_summary(output)["pairs_per_second"], {(q, d): np.float32(s) for q, d, s in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True, help="Rerank input JSONL.")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="Rounds (each runs both).")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N candidates.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        input_path = args.input
        candidates = [c for block in iter_query_blocks(args.input) for c in block.candidates]
        if args.limit:
            candidates = candidates[: args.limit]
            input_path = str(Path(workdir) / "input.jsonl")
            Path(input_path).write_text("".join(f"{line}" for line in _lines(args.input, args.limit)))
        pairs = [(c.query, c.title, c.text) for c in candidates]
        reranker = Reranker.from_pretrained(args.model, precision="bf16" if args.bf16 else "fp32")
        rates: dict[str, list[float]] = {"cli": [], "api": []}
        same = True
        for round_number in range(args.repeat):
            for mode in ("cli", "api") if round_number % 2 == 0 else ("api", "cli"):
                if mode == "cli":
                    rate, cli = run_cli(args, input_path, Path(workdir) / "cli.txt")
                else:
                    started = time.perf_counter()
                    scores = reranker.predict(pairs)
                    rate = len(pairs) / (time.perf_counter() - started)
                rates[mode].append(rate)
                print(f"round {round_number} {mode}: {rate:.1f} pairs/s", flush=True)
        same = scores.tolist() == [cli[c.query_id, c.docid] for c in candidates]
    medians = {mode: statistics.median(values) for mode, values in rates.items()}
    print(f"pairs: {len(pairs)}  precision: {'bf16' if args.bf16 else 'fp32'}  same scores: {same}")
    print(f"median pairs/s: cli {medians['cli']:.1f}  api {medians['api']:.1f}")
    print(f"api_vs_cli={medians['api'] / medians['cli']:.3f}")


def _lines(path: str, limit: int):
    with open(path) as handle:
        yield from itertools.islice(handle, limit)


if __name__ == "__main__":
    main()
