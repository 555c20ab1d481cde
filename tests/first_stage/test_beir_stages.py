"""Every stage that takes a corpus, queries or qrels takes a BEIR folder too (`--beir DIR --split S`): the same
result as the files one by one, titles kept, and one-line errors for flags that clash or are missing."""

from __future__ import annotations

import gzip
import json

import pytest

from reranker.cli.bm25 import main as bm25
from reranker.cli.evaluate import main as evaluate
from reranker.cli.mine_negatives import main as mine
from reranker.cli.prepare import main as prepare
from reranker.first_stage.bm25 import cached_index
from reranker.io.runs import read_run
from tests.conftest import BEIR_QRELS

NDCG_LINE = "nDCG@10: "


@pytest.fixture
def indexed(beir_folder, tmp_path):
    assert bm25(["index", "--beir", str(beir_folder), "--index", str(tmp_path / "index"), "--quiet"]) == 0
    return tmp_path / "index"


def test_search_the_split_and_evaluate_it(beir_folder, indexed, tmp_path, capsys):
    run = tmp_path / "test.trec"
    assert bm25(["search", "--beir", str(beir_folder), "--index", str(indexed), "--output", str(run)]) == 0
    searched = read_run(run)
    assert list(searched) == ["q1", "q2"]  # the test split's queries only
    assert searched["q1"][0].docid == "d1" and searched["q2"][0].docid == "d4"
    capsys.readouterr()
    assert evaluate(["--beir", str(beir_folder), "--run", str(run), "--metrics", "nDCG@10"]) == 0
    assert f"{NDCG_LINE}1.0000" in capsys.readouterr().out.splitlines()
    assert evaluate(["--beir", str(beir_folder), "--split", "train", "--run", str(run), "--metrics", "nDCG@10"]) == 0
    assert f"{NDCG_LINE}0.0000" in capsys.readouterr().out.splitlines()  # the train queries were not searched


def test_prepare_from_a_beir_folder_keeps_titles(beir_folder, indexed, tmp_path):
    run = tmp_path / "test.trec"
    bm25(["search", "--beir", str(beir_folder), "--index", str(indexed), "--output", str(run), "--hits", "3"])
    output = tmp_path / "rerank.jsonl"
    assert prepare(["--beir", str(beir_folder), "--retrieval", str(run), "--output_path", str(output)]) == 0
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(lines) == 6
    text = "A lobster roll is a sandwich of lobster meat on a grilled bun."
    assert lines[0] == {"query_id": "q1", "query": "what is in a lobster roll sandwich", "docid": "d1",
                        "title": "Lobster rolls", "text": text, "score": read_run(run)["q1"][0].score}  # fmt: skip


def test_mine_the_train_split_with_bm25_from_a_cached_index(beir_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("RERANKER_CACHE", str(tmp_path / "cache"))
    output = tmp_path / "train.jsonl.gz"
    flags = ["--beir", beir_folder, "--output", output, "--depth", 6, "--n_negatives", 1, "--sampling", "top"]
    assert mine([str(flag) for flag in flags]) == 0
    rows = [json.loads(line) for line in gzip.open(output, "rt")]
    assert [(r["query_id"], [p["docid"] for p in r["positive_passages"]]) for r in rows] == [
        (q, [d]) for q, d, _ in BEIR_QRELS["train"]
    ]
    run = read_run(f"{output}.bm25.trec")
    assert list(run) == ["q3", "q4"]
    for row in rows:  # the negative is BM25's best candidate that is not the positive
        best = [e.docid for e in run[row["query_id"]] if e.docid != row["positive_passages"][0]["docid"]][0]
        assert [p["docid"] for p in row["negative_passages"]] == [best] and row["positive_passages"][0]["title"]
    cached = list((tmp_path / "cache" / "bm25").iterdir())
    assert [p.name.split(".")[0] for p in cached] == ["corpus"]
    assert cached_index(beir_folder / "corpus.jsonl", tmp_path / "cache" / "bm25") == cached[0]  # reused


def test_a_changed_corpus_gets_a_new_cached_index(beir_folder, tmp_path):
    first = cached_index(beir_folder / "corpus.jsonl", tmp_path / "cache")
    corpus = beir_folder / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + '{"_id": "d7", "title": "", "text": "new"}\n')
    assert cached_index(corpus, tmp_path / "cache") != first


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        (
            prepare,
            ["--retrieval", "r", "--output_path", "o", "--corpus", "c"],
            "--query_data_name is required (or --beir",
        ),
        (
            prepare,
            ["--beir", "B", "--corpus", "c", "--retrieval", "r", "--output_path", "o"],
            "give --beir or --corpus",
        ),
        (evaluate, ["--run", "r"], "--qrels is required (or --beir for a BEIR folder)"),
        (mine, ["--queries", "q", "--qrels", "q", "--corpus", "c", "--output", "o"], "--run is required (or --beir"),
        (mine, ["--beir", "B", "--qrels", "q", "--output", "o"], "give --beir or --qrels, not both"),
    ],
)
def test_clashing_or_missing_flags_are_one_line(beir_folder, command, flags, message, capsys):
    flags = [str(beir_folder) if flag == "B" else flag for flag in flags]
    assert command(flags) == 2
    assert message in capsys.readouterr().err


def test_a_beir_folder_with_a_bad_qrels_line_stops_the_stage(beir_folder, indexed, tmp_path, capsys):
    (beir_folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td9\t1\n")
    run = tmp_path / "test.trec"
    assert bm25(["search", "--beir", str(beir_folder), "--index", str(indexed), "--output", str(run)]) == 2
    assert "test.tsv:2: passage 'd9' is not in" in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.slow
def test_scifact_bm25_equals_pyserini_flat(scifact, tmp_path, monkeypatch, capsys):
    """Our index and search of the BEIR folder give pyserini's flat BM25 on SciFact (nDCG@10 0.679)."""
    monkeypatch.setenv("RERANKER_CACHE", str(tmp_path / "cache"))
    index = cached_index(scifact / "corpus.jsonl.gz")
    run = tmp_path / "scifact.trec"
    assert bm25(["search", "--beir", str(scifact), "--index", str(index), "--output", str(run), "--hits", "100"]) == 0
    capsys.readouterr()
    assert evaluate(["--beir", str(scifact), "--run", str(run), "--metrics", "nDCG@10", "R@100"]) == 0
    report = capsys.readouterr().out.splitlines()
    assert f"{NDCG_LINE}0.6789" in report and "R@100: 0.9253" in report
