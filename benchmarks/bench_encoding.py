"""Host-side cost of scoring: reading a rerank file and encoding its pairs, no model.

    python benchmarks/bench_encoding.py --model DIR --input RERANK_JSONL [--repeat 5]

On a GPU this is the work that has to keep up with the device (15,000 pairs/s for BERT-base on an H100), in a
thread beside the one running the model. The same pairs are encoded two ways in one process: ours (the rerank
file read in chunks, `reranker.inference.score_file.encode_blocks`, as `reranker_inference.py` does) and the
reference's (candidates read, then two tokenizer calls and a join per pair). Each prints pairs/s of wall time and
the microseconds of CPU per pair of the calling thread, i.e. the part holding the GIL (the Rust tokenizer's own
threads are not counted), and last one line `speedup_vs_reference=X.XX`.

`--encode_workers 0 2` also times the chunks as `reranker_inference.py` gets them (`encoded_chunks`: a thread, or
that many worker processes) with the CPU of the whole timing process per pair (its threads, not the workers):
what is left to compete with a scoring thread for the GIL.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_scoring import read_pairs, reference_encode, write_input  # noqa: E402  (beside this script)

from reranker.inference.chunks import Sharding  # noqa: E402
from reranker.inference.score_file import encode_blocks, encoded_chunks, iter_chunks  # noqa: E402
from reranker.io.resumable import Progress  # noqa: E402
from reranker.model.loading import load_tokenizer  # noqa: E402
from reranker.model.pair_encoding import PairEncoder  # noqa: E402


def encode_ours(encoder: PairEncoder, path: str) -> int:
    pairs = 0
    for _, blocks, _ in iter_chunks(path, chunk_size=20000):
        pairs += len(encode_blocks(encoder, blocks))
    return pairs


def encode_reference(encoder: PairEncoder, path: str) -> int:
    return len([reference_encode(encoder, candidate) for candidate in read_pairs(path, None)])


def encode_as_inference(workers: int, encoder: PairEncoder, path: str) -> int:
    chunks = encoded_chunks(encoder, path, Progress("bench"), 20000, Sharding(), workers)
    return sum(len(chunk.pairs) for chunk in chunks)


def measure(encode, encoder: PairEncoder, path: str, cpu_clock=time.thread_time) -> tuple[float, float]:
    """(pairs/s of wall time, microseconds of `cpu_clock` per pair: the calling thread's CPU by default)."""
    wall, cpu = time.perf_counter(), cpu_clock()
    pairs = encode(encoder, path)
    wall, cpu = time.perf_counter() - wall, cpu_clock() - cpu
    return pairs / wall, cpu / pairs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--repeat", type=int, default=5, help="Encode the input this many times over.")
    parser.add_argument("--q_max_len", type=int, default=16)
    parser.add_argument("--p_max_len", type=int, default=128)
    parser.add_argument("--encode_workers", type=int, nargs="*", default=[],
                        help="Also time encoded_chunks with each of these worker counts (0: a thread).")  # fmt: skip
    args = parser.parse_args()
    encoder = PairEncoder(load_tokenizer(args.model), args.q_max_len, args.p_max_len)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "input.jsonl")
        pairs = read_pairs(args.input, None, args.repeat)
        write_input(pairs, Path(path))
        print(f"{len(pairs)} pairs")
        rates = {}
        for name, encode in ("ours", encode_ours), ("reference", encode_reference):
            rates[name], cpu = measure(encode, encoder, path)
            print(f"{name:10s} {rates[name]:9.0f} pairs/s, calling thread {cpu:5.1f} us of CPU a pair")
        for workers in args.encode_workers:
            rate, cpu = measure(functools.partial(encode_as_inference, workers), encoder, path, time.process_time)
            how = f"{workers} worker processes" if workers else "a thread"
            print(f"encoded_chunks, {how}: {rate:9.0f} pairs/s, this process {cpu:5.1f} us of CPU a pair")
    print(f"speedup_vs_reference={rates['ours'] / rates['reference']:.2f}")


if __name__ == "__main__":
    main()
