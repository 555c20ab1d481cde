"""`python -m reranker.benchmark --data BEIR_DIR --models M1 [M2 ...]`: from a BEIR folder to one results table.

Builds (once, cached by corpus file) the BM25 index, searches the split's queries, prepares the rerank file,
reranks the top `--depth` with each model through the inference engine, evaluates, and prints a Markdown table:
the first stage and each model with nDCG@10, MRR@10, R@100, pairs/s and the step's wall time. Writes
OUT/results.json, the runs in TREC format (OUT/runs/bm25.trec, OUT/runs/<model>.trec) and OUT/per_query.png.
Run it again after a kill: complete steps are skipped, a partly scored file resumes.
"""

from __future__ import annotations

import argparse
import time

from reranker.cli.common import add_index_cache_flag, exits_on_bad_input, setup_logging
from reranker.model.heads import DECODER_FLAGS
from reranker.model.precision import precision_name
from reranker.model.prompt_template import unescape_flag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reranker.benchmark", description=__doc__)
    parser.add_argument("--data", required=True, help="BEIR dataset folder: corpus.jsonl[.gz], queries.jsonl, qrels/.")
    parser.add_argument("--split", default="test", help="The qrels split evaluated (default: test).")
    parser.add_argument("--models", nargs="+", required=True, help="Cross-encoder folders or Hub names.")
    parser.add_argument("--first_stage", default="bm25", help="bm25 (default), or a run file (TREC or MS MARCO).")
    parser.add_argument("--depth", type=int, default=100, help="Candidates reranked per query (default: 100).")
    parser.add_argument("--output_dir", default="benchmark", help="Where results go (default: benchmark).")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU, or a CPU with native bf16).")
    parser.add_argument("--fp16", action="store_true", help="fp16 autocast (GPU only).")
    parser.add_argument("--batch_size", type=int, default=128, help="Pairs per forward pass (default: 128).")
    parser.add_argument("--score_head", default=None, help="The head of models that record none, e.g. yes_no for "
                        "Qwen3-Reranker (then give --models of that kind only).")  # fmt: skip
    for flag in DECODER_FLAGS:
        parser.add_argument(f"--{flag}", default=None, type=unescape_flag,
                            help="Decoder models: their prompt, e.g. --instruction for this dataset's task (see "
                            "train_reranker.py --help; \\n, \\t unescaped).")  # fmt: skip
    parser.add_argument("--q_max_len", type=int, default=32, help="Query tokens kept (default: 32).")
    parser.add_argument("--p_max_len", type=int, default=256, help="Passage tokens kept, title too (default: 256).")
    parser.add_argument("--window_tokens", type=int, nargs="+", default=[], help="Window sizes (the model's tokens): "
                        "each adds a run per --aggregate of documents cut into windows (default: none).")  # fmt: skip
    parser.add_argument("--window_stride", type=int, nargs="+", default=[], help="Each window size's stride "
                        "(default: half the window).")  # fmt: skip
    parser.add_argument("--aggregate", nargs="+", default=["firstp", "maxp"], help="How window scores combine: "
                        "firstp, maxp, sump, meanp, kmaxavg:K (default: firstp maxp).")  # fmt: skip
    add_index_cache_flag(parser)
    return parser


@exits_on_bad_input(flag_names={"aggregates": "aggregate"})
def main(argv: list[str] | None = None) -> None:
    setup_logging()
    args = build_parser().parse_args(argv)
    precision = precision_name(args.fp16, args.bf16)
    from reranker.benchmarking.pipeline import BenchmarkSettings, run_benchmark

    started = time.perf_counter()
    settings = BenchmarkSettings(
        args.data, tuple(args.models), args.split, args.first_stage, args.depth, args.output_dir, precision,
        args.batch_size, args.q_max_len, args.p_max_len, args.index_cache, args.score_head,
        {flag: getattr(args, flag) for flag in DECODER_FLAGS},
        tuple(args.window_tokens), tuple(args.window_stride), tuple(args.aggregate),
    )  # fmt: skip
    results = run_benchmark(settings)
    print(results.table)
    print(f"wrote {results.output_dir}/results.json, runs/ and per_query.png in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    raise SystemExit(main())
