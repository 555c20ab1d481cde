"""`python -m reranker.benchmark`: a BEIR folder to one table, runs, results.json and the per-query picture;
every step resumes."""

from __future__ import annotations

import json
import math

import pytest

from reranker import Reranker
from reranker.benchmarking.comparison import SystemRun, compare_systems, markdown_table
from reranker.benchmarking.pipeline import BenchmarkSettings, model_names, run_benchmark
from reranker.cli.benchmark import main
from reranker.io.errors import ParameterError
from reranker.io.runs import read_run
from tests.conftest import BEIR_CORPUS, BEIR_QUERIES

QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 2}}


def write_trec(path, ranking: dict[str, list[str]]) -> str:
    lines = [f"{q} Q0 {d} {rank} {10 - rank} t\n" for q, docs in ranking.items() for rank, d in enumerate(docs, 1)]
    path.write_text("".join(lines))
    return str(path)


def test_metrics_and_per_query_counts_by_hand(tmp_path):
    first = write_trec(tmp_path / "first.trec", {"q1": ["x", "d1"], "q2": ["d3", "d2"]})
    second = write_trec(tmp_path / "second.trec", {"q1": ["d1", "x"], "q2": ["d3", "d2"]})
    systems = [SystemRun("bm25", first, seconds=1.5), SystemRun("m", second, 99.0, pairs=4)]
    rows, differences = compare_systems(QRELS, systems)
    ideal = 1 + 1 / math.log2(3)
    ndcg_q1_first = 1 / math.log2(3)  # the relevant passage at rank 2
    assert rows[0].ndcg_at_10 == pytest.approx((ndcg_q1_first + ideal / ideal) / 2)
    assert rows[0].mrr_at_10 == pytest.approx((1 / 2 + 1) / 2) and rows[1].mrr_at_10 == 1.0
    assert rows[1].ndcg_at_10 == pytest.approx(1.0) and rows[1].recall_at_100 == 1.0
    assert (rows[1].wins, rows[1].ties, rows[1].losses) == (1, 1, 0) and rows[0].wins is None
    assert differences == {"m": pytest.approx([1 - ndcg_q1_first, 0.0])}
    table = markdown_table(rows).splitlines()
    assert table[0] == "| system | nDCG@10 | MRR@10 | R@100 | pairs | pairs/s | wall s | vs first stage (W/T/L) |"
    assert table[2] == f"| bm25 | {rows[0].ndcg_at_10:.4f} | 0.7500 | 1.0000 | - | - | 1.5 | - |"
    assert table[3] == "| m | 1.0000 | 1.0000 | 1.0000 | 4 | 99.0 | - | 1/1/0 |"


def test_model_names_are_folder_names_made_distinct():
    assert model_names(["runs/minilm", "cross-encoder/ms-marco-MiniLM-L6-v2"]) == ["minilm", "ms-marco-MiniLM-L6-v2"]
    assert model_names(["a/reranker/", "b/reranker"]) == ["a_reranker", "b_reranker"]
    with pytest.raises(ParameterError, match="models names the same model twice"):
        model_names(["a/m", "a/m"])
    with pytest.raises(ParameterError, match="may not be named bm25"):
        model_names(["x/bm25"])


@pytest.fixture
def benchmark(beir_folder, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RERANKER_CACHE", str(tmp_path / "cache"))
    return BenchmarkSettings(str(beir_folder), (str(tiny_model_dir),), depth=4, output_dir=str(tmp_path / "out"))


@pytest.mark.slow
def test_a_benchmark_writes_the_table_runs_results_and_picture(benchmark, tiny_model_dir):
    results = run_benchmark(benchmark)
    out = results.output_dir
    name = tiny_model_dir.name
    assert [row.name for row in results.rows] == ["bm25", name]
    bm25_run, model_run = read_run(out / "runs" / "bm25.trec"), read_run(out / "runs" / f"{name}.trec")
    assert list(bm25_run) == list(model_run) == ["q1", "q2"]
    assert [{e.docid for e in bm25_run[q]} for q in bm25_run] == [{e.docid for e in model_run[q]} for q in model_run]
    assert (out / "runs" / f"{name}.trec").read_text().split("\n")[0].split()[-1] == name  # TREC, tagged
    saved = json.loads((out / "results.json").read_text())
    assert saved["queries"] == 2 and saved["table"] == results.table and saved["settings"]["depth"] == 4
    assert [s["name"] for s in saved["systems"]] == ["bm25", name] and saved["systems"][1]["pairs_per_second"] > 0
    candidates = sum(map(len, bm25_run.values()))
    scored = json.loads((out / "scores" / f"{name}.txt.summary.json").read_text())
    assert scored["candidates"] == candidates and saved["systems"][1]["seconds"] == scored["seconds"]
    assert (out / "per_query.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert results.table.splitlines()[2].startswith("| bm25 | 1.0000 |")


def test_a_rerun_redoes_only_what_is_missing(benchmark, tiny_model_dir, caplog):
    first = run_benchmark(benchmark)
    out = first.output_dir
    kept = {p: p.stat().st_mtime_ns for p in (out / "runs" / "bm25.trec", out / "rerank.jsonl")}
    (out / "runs" / f"{tiny_model_dir.name}.trec").unlink()
    caplog.set_level("INFO")
    again = run_benchmark(benchmark)
    assert again.table == first.table
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert sum("already complete for this job" in r.getMessage() for r in caplog.records) == 3


def test_the_command_prints_the_table_and_refuses_bad_flags(benchmark, capsys):
    flags = [
        "--data",
        benchmark.data,
        "--models",
        *benchmark.models,
        "--depth",
        "4",
        "--output_dir",
        benchmark.output_dir,
    ]
    assert main(flags) == 0
    assert (
        "| system | nDCG@10 | MRR@10 | R@100 | pairs | pairs/s | wall s | vs first stage (W/T/L) |"
        in capsys.readouterr().out
    )
    assert main([*flags, "--depth", "0"]) == 2
    assert "error: --depth must be >= 1, got 0" in capsys.readouterr().err
    assert main([*flags, "--first_stage", "nowhere.trec"]) == 2
    assert "error: --first_stage must be bm25 or a run file, got 'nowhere.trec'" in capsys.readouterr().err
    assert main([*flags, "--split", "dev"]) == 2
    assert "qrels/dev.tsv: no such file (the splits here: test, train)" in capsys.readouterr().err
    for bad, message in [
        (["--window_tokens", "8", "--window_stride", "9"], "--window_stride (9) must not be larger than --window_"),
        (["--window_tokens", "300"], "--window_tokens (300) must be <= p_max_len (256)"),
        (["--window_tokens", "8", "16", "--window_stride", "4"], "--window_stride gives 1 strides for 2 window sizes"),
        (["--window_tokens", "8", "--aggregate", "maxp", "top3"], "--aggregate must be one of firstp, maxp, sump"),
    ]:
        assert main([*flags, *bad]) == 2
        assert f"error: {message}" in capsys.readouterr().err


def test_a_given_run_file_is_the_first_stage(benchmark, tmp_path):
    run = write_trec(tmp_path / "dense.trec", {"q1": ["d2", "d1"], "q2": ["d5", "d4", "d6"]})
    results = run_benchmark(BenchmarkSettings(**{**vars(benchmark), "first_stage": run}))
    assert [row.name for row in results.rows][0] == "dense"
    assert not (results.output_dir / "runs" / "bm25.trec").exists()


def test_a_decoder_reranker_that_records_no_head_is_benchmarked_with_score_head(benchmark, tiny_decoders, tmp_path):
    run = write_trec(tmp_path / "dense.trec", {"q1": ["d2", "d1"], "q2": ["d5", "d4", "d6"]})
    qwen = str(tiny_decoders["qwen3"])
    settings = {**vars(benchmark), "first_stage": run, "models": (qwen,)}
    with pytest.raises(ParameterError, match="is a causal LM that records no score head"):
        run_benchmark(BenchmarkSettings(**settings))
    results = run_benchmark(BenchmarkSettings(**{**settings, "score_head": "yes_no"}))
    assert [row.name for row in results.rows] == ["dense", "qwen3"]
    scored = json.loads((results.output_dir / "scores" / "qwen3.txt.summary.json").read_text())
    assert scored["candidates"] == 5
    task = "Given a question, retrieve passages that answer it"  # the dataset's instruction reaches the prompt
    instructed_settings = {**settings, "score_head": "yes_no", "template": {"instruction": task},
                           "output_dir": str(tmp_path / "instructed")}  # fmt: skip
    instructed = run_benchmark(BenchmarkSettings(**instructed_settings))
    expected = Reranker.from_pretrained(qwen, score_head="yes_no", q_max_len=32, p_max_len=256, instruction=task)
    lines = (instructed.output_dir / "scores" / "qwen3.txt").read_text().splitlines()
    scores = {line.split("\t")[1]: float(line.split("\t")[2]) for line in lines}
    pair = (BEIR_QUERIES[0][1], BEIR_CORPUS[1][1], BEIR_CORPUS[1][2])
    assert scores["d2"] == pytest.approx(expected.predict([pair])[0], abs=1e-6)
    assert scores["d2"] != pytest.approx(Reranker.from_pretrained(qwen, score_head="yes_no").predict([pair])[0])


def test_windows_add_a_run_per_size_and_aggregate_from_one_scoring(benchmark, tiny_model_dir):
    settings = BenchmarkSettings(**{**vars(benchmark), "window_tokens": (4,), "aggregates": ("firstp", "maxp")})
    results = run_benchmark(settings)
    name, out = tiny_model_dir.name, results.output_dir
    assert [row.name for row in results.rows] == ["bm25", name, f"{name} w4s2 firstp", f"{name} w4s2 maxp"]
    windows = [json.loads(line) for line in (out / f"rerank.{name}.w4s2.jsonl").read_text().splitlines()]
    plain = [json.loads(line) for line in (out / "rerank.jsonl").read_text().splitlines()]
    assert len(windows) > len(plain) == results.rows[1].pairs  # the corpus' texts run past 4 tokens
    assert results.rows[2].pairs == results.rows[3].pairs == len(windows)  # one scoring, two aggregates
    assert {e.docid for entries in read_run(out / "runs" / f"{name}.w4s2.maxp.trec").values() for e in entries} == {
        row["docid"] for row in plain
    }  # fmt: skip
