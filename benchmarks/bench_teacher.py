"""The teacher's own effectiveness: rerank a rerank file with a bi-encoder teacher (zero-shot), evaluate.

    python benchmarks/bench_teacher.py --teacher MINILM --input RERANK_JSONL --qrels QRELS [--bf16] [--output RUN]

The bi-encoder scores each query's candidates as the teacher stage does (`BiEncoderTeacher`: the cosine of
sentence-transformers' pooled, normalised embeddings); the run is ranked by those scores (ties in input order)
and evaluated like any run: MRR@10 (official) and nDCG@10. It prints the teacher's passages/s too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker.evaluation.metrics import evaluate  # noqa: E402
from reranker.io.qrels import read_qrels  # noqa: E402
from reranker.io.rerank_input import iter_query_blocks  # noqa: E402
from reranker.io.runs import RunEntry, write_trec_lines  # noqa: E402
from reranker.training.teacher_scores import BiEncoderTeacher  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--input", required=True, help="Rerank input JSONL.")
    parser.add_argument("--qrels", required=True)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--output", default=None, help="Also write the teacher's run (TREC).")
    args = parser.parse_args()
    teacher = BiEncoderTeacher(args.teacher, torch.device("cpu"), "bf16" if args.bf16 else "fp32", args.batch_size)
    blocks = list(iter_query_blocks(args.input))
    started = time.perf_counter()
    scores = teacher.score([b.query for b in blocks], [[(c.title, c.text) for c in b.candidates] for b in blocks])
    seconds = time.perf_counter() - started
    run, offset = {}, 0
    for block in blocks:
        block_scores = scores[offset : offset + len(block.candidates)]
        offset += len(block.candidates)
        order = np.argsort(-block_scores, kind="stable")
        run[block.query_id] = [RunEntry(block.query_id, block.candidates[i].docid, rank, float(block_scores[i]))
                               for rank, i in enumerate(order, start=1)]  # fmt: skip
    if args.output:
        with open(args.output, "w") as out:
            for qid, entries in run.items():
                write_trec_lines(out, qid, ((e.docid, e.score) for e in entries), tag="teacher")
    result = evaluate(read_qrels(args.qrels), run, ["nDCG@10"])
    print(f"passages: {len(scores)}  seconds: {seconds:.1f}  passages/s: {len(scores) / seconds:.1f}")
    print(f"MRR@10: {result.mrr_at_10:.4f}  nDCG@10: {result.metrics['nDCG@10']:.4f}")


if __name__ == "__main__":
    main()
