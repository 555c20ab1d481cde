"""BM25 first stage on the offline corpus: indexing and search speed, MRR@10, and equality checks.

    python benchmarks/bench_bm25.py [--data ../shared/data/offline] [--workdir DIR] [--repeat 3]

In one process (one JVM): index `corpus.jsonl.gz` (27,833 passages) with 1 and 2 threads; search the dev600
and val queries (top 1000, k1=0.9, b=0.4) with 1 and 2 threads; evaluate MRR@10 with
`reranker.evaluation.metrics`. Then it checks that
  - every run equals pyserini's `LuceneSearcher.search` on the same index (same docids in the same order),
  - the 1- and 2-thread runs are byte-identical,
  - the val top 30 equals the staged `val/run.bm25.trec` and pyserini's own CLI (`python -m
    pyserini.search.lucene`, its JVM started by reranker.first_stage.java) writes the same run: same queries in the
    same order, docids, ranks, and scores (pyserini prints 6 decimals, we print the exact float32),
  - `reranker.mine_negatives --sampling top --n_negatives 30` on a BM25 run of the train part-(a) queries gives
    the staged `train.jsonl.gz` rows (built the same way, see the data README).
Timings exclude the JVM start (once per process, about 1 s) and pyserini's import (about 5 s).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reranker.evaluation.metrics import evaluate  # noqa: E402
from reranker.first_stage.bm25 import build_index, run_search  # noqa: E402
from reranker.first_stage.java import start_jvm  # noqa: E402
from reranker.first_stage.mine_negatives import MiningOptions, mine_negatives  # noqa: E402
from reranker.io.qrels import read_qrels  # noqa: E402
from reranker.io.queries import read_queries  # noqa: E402
from reranker.io.runs import read_run  # noqa: E402


def check(condition: bool, what: str) -> None:
    print(f"  [{'ok' if condition else 'FAILED'}] {what}")
    if not condition:
        raise SystemExit(1)


def same_as_lucene_searcher(run_path: Path, index: Path, topics: Path, hits: int) -> bool:
    from pyserini.search.lucene import LuceneSearcher

    searcher = LuceneSearcher(str(index))
    searcher.set_bm25(0.9, 0.4)
    run = read_run(run_path)
    queries = read_queries(str(topics))
    for qid, query in queries.items():
        direct = [hit.docid for hit in searcher.search(query, hits)]
        if [entry.docid for entry in run.get(qid, [])] != direct:
            return False
    return True


def same_score(ours: float, printed: float) -> bool:
    """The same float32 score, whether printed exactly or rounded to 6 decimals."""
    return np.float32(ours) == np.float32(printed) or abs(ours - printed) <= 5.000001e-7


def same_ranking(ours: Path, theirs: Path, depth: int | None = None) -> bool:
    """Same queries in the same order, same docids and ranks, same scores up to pyserini's printing."""
    a, b = read_run(ours), read_run(theirs)
    if list(a) != list(b):
        return False
    for qid, entries in b.items():
        mine = a[qid][:depth] if depth else a[qid]
        if [(e.docid, e.rank) for e in mine] != [(e.docid, e.rank) for e in entries]:
            return False
        if not all(same_score(x.score, y.score) for x, y in zip(mine, entries, strict=True)):
            return False
    return True


def pyserini_cli_run(index: Path, topics: Path, output: Path) -> float:
    code = (
        "import runpy, sys; from reranker.first_stage.java import start_jvm; start_jvm(); "
        "sys.argv = ['pyserini.search.lucene'] + sys.argv[1:]; "
        "runpy.run_module('pyserini.search.lucene', run_name='__main__')"
    )
    flags = ["--index", index, "--topics", topics, "--output", output, "--bm25", "--k1", "0.9", "--b", "0.4"]
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, *map(str, flags)], check=True, cwd=ROOT, capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    return time.perf_counter() - started


def train_part_a(data: Path, work: Path, index: Path) -> tuple[int, int]:
    """Rebuild the staged part-(a) training rows; return (rows equal, rows compared)."""
    qrels_all = read_qrels(data.parent / "anserini-tools" / "qrels.msmarco-passage.dev-subset.txt")
    staged = [json.loads(line) for line in gzip.open(data / "train.jsonl.gz", "rt", encoding="utf-8")]
    part_a = [row for row in staged if row["query_id"] in qrels_all]
    (work / "train_a.tsv").write_text("".join(f"{r['query_id']}\t{r['query']}\n" for r in part_a), encoding="utf-8")
    run_search(str(index), str(work / "train_a.tsv"), str(work / "train_a.trec"), threads=2)
    queries = read_queries(str(work / "train_a.tsv"))
    qrels = {qid: qrels_all[qid] for qid in queries}
    options = MiningOptions(depth=1000, n_negatives=30, sampling="top")
    run = read_run(work / "train_a.trec")
    mine_negatives(queries, qrels, run, "train_a.trec", str(data / "corpus.jsonl.gz"), str(work / "a.jsonl"), options)
    mined = {row["query_id"]: row for row in map(json.loads, open(work / "a.jsonl", encoding="utf-8"))}
    return sum(mined.get(row["query_id"]) == row for row in part_a), len(part_a)


def rates(count: int, seconds: list[float]) -> str:
    """`best (median m)` items per second."""
    return f"{count / min(seconds):.1f} (median {count / statistics.median(seconds):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "offline"))
    parser.add_argument("--workdir", default=None, help="Keep the index and runs here (default: a temp folder).")
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs per setting; best and median shown.")
    args = parser.parse_args()
    data = Path(args.data)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_bm25."))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}")
    start_jvm()
    import pyserini.search.lucene  # noqa: F401  (imported once here so that no timing below includes it)

    print(f"indexing corpus.jsonl.gz (best and median of {args.repeat})")
    for threads in (1, 2):
        timed = [
            build_index(str(data / "corpus.jsonl.gz"), work / f"index{threads}", threads, True, quiet=True)
            for _ in range(args.repeat)
        ]
        passages = timed[0].passages
        best = min(timed, key=lambda stats: stats.seconds)
        print(
            f"  threads={threads}: {passages} passages, {rates(passages, [t.seconds for t in timed])} passages/s "
            f"(best: convert {best.convert_seconds:.2f} s + Lucene {best.index_seconds:.2f} s)"
        )
    index = work / "index2"

    for name in ("dev600", "val"):
        topics = data / name / "queries.tsv"
        qrels = read_qrels(data / name / "qrels.txt")
        print(f"searching {name} ({len(read_queries(str(topics)))} queries, top 1000, k1=0.9 b=0.4)")
        runs = {}
        for threads in (1, 2):
            runs[threads] = work / f"{name}.t{threads}.trec"
            timed = [
                run_search(str(index), str(topics), str(runs[threads]), hits=1000, threads=threads)
                for _ in range(args.repeat)
            ]
            print(f"  threads={threads}: {rates(timed[0].queries, [t.seconds for t in timed])} queries/s")
        result = evaluate(qrels, read_run(runs[1]), ["nDCG@10", "R@1000"])
        print(f"  MRR@10 {result.mrr_at_10:.4f}  " + "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
        check(runs[1].read_bytes() == runs[2].read_bytes(), "1- and 2-thread runs are byte-identical")
        check(same_as_lucene_searcher(runs[1], index, topics, 1000), "run == LuceneSearcher.search, every query")
        other = work / f"{name}.index1.trec"
        run_search(str(work / "index1"), str(topics), str(other), hits=1000)
        check(other.read_bytes() == runs[1].read_bytes(), "index built with 1 thread gives the same run")
        cli = work / f"{name}.pyserini.trec"
        seconds = pyserini_cli_run(index, topics, cli)
        check(
            cli.read_bytes() == runs[1].read_bytes(), f"pyserini's CLI writes a byte-identical run ({seconds:.1f} s)"
        )
        if name == "val":
            staged = data / "val" / "run.bm25.trec"
            check(same_ranking(runs[1], staged, depth=30), "val top 30 == staged val/run.bm25.trec")
            staged_mrr = evaluate(qrels, read_run(staged), []).mrr_at_10
            check(abs(staged_mrr - result.mrr_at_10) < 1e-12, f"MRR@10 equals the staged run's ({staged_mrr:.4f})")

    equal, total = train_part_a(data, work, index)
    check(equal == total, f"mined train part (a) == staged train.jsonl.gz rows: {equal} of {total}")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
