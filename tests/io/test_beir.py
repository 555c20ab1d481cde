"""BEIR folders: the split's queries and qrels, corpus titles, and one-line errors for bad folders."""

from __future__ import annotations

import gzip

import pytest

from reranker.io.beir import beir_files, read_beir_split
from reranker.io.corpus import iter_corpus_file, load_passages
from reranker.io.errors import InputError
from reranker.io.qrels import read_qrels
from reranker.io.queries import read_queries
from tests.conftest import write_beir_folder


def test_a_split_holds_the_queries_its_qrels_judge_in_qrels_order(beir_folder):
    split = read_beir_split(beir_folder, "test")
    assert split.queries == {"q1": "what is in a lobster roll sandwich", "q2": "why does a volcano erupt magma"}
    assert split.qrels == {"q1": {"d1": 1}, "q2": {"d4": 2, "d5": 1}}
    assert split.files.corpus == beir_folder / "corpus.jsonl"
    assert list(read_beir_split(beir_folder, "train").queries) == ["q3", "q4"]


def test_corpus_lines_keep_their_titles_and_a_gzipped_corpus_is_found(tmp_path):
    folder = write_beir_folder(tmp_path / "gz", gzip_corpus=True)
    files = beir_files(folder, "test")
    assert files.corpus.name == "corpus.jsonl.gz"
    first = next(iter_corpus_file(files.corpus))
    assert first == (1, ("d1", "Lobster rolls", "A lobster roll is a sandwich of lobster meat on a grilled bun."))


def test_the_header_is_skipped_in_any_qrels_and_required_in_a_beir_folder(beir_folder, tmp_path):
    assert read_qrels(beir_folder / "qrels" / "test.tsv") == {"q1": {"d1": 1}, "q2": {"d4": 2, "d5": 1}}
    headless = beir_folder / "qrels" / "test.tsv"
    headless.write_text("q1\td1\t1\n")
    assert read_qrels(headless) == {"q1": {"d1": 1}}
    with pytest.raises(InputError, match=r"qrels/test\.tsv:1: expected the BEIR header 'query-id corpus-id score'"):
        read_beir_split(beir_folder, "test")


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("q1\td1\t1\nq9\td2\t1\n", r"test\.tsv:3: query 'q9' is not in .*queries\.jsonl"),
        ("q1\td1\t1\nq2\td404\t1\n", r"test\.tsv:3: passage 'd404' is not in .*corpus\.jsonl"),
        ("q1\td1\tyes\n", r"test\.tsv:2: relevance must be an integer, got 'yes'"),
        ("q1\td1\t1\nq1\td1\t0\n", r"test\.tsv:3: duplicate judgment of 'd1' for query 'q1'"),
        ("q1\td1\n", r"test\.tsv:2: expected 3 columns, got 2"),
    ],
)
def test_bad_qrels_name_the_line(beir_folder, qrels, message):
    (beir_folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    with pytest.raises(InputError, match=message):
        read_beir_split(beir_folder, "test")


def test_duplicate_ids_are_refused_with_their_line(beir_folder):
    queries = beir_folder / "queries.jsonl"
    queries.write_text(queries.read_text() + '{"_id": "q2", "text": "again"}\n')
    with pytest.raises(InputError, match=r"queries\.jsonl:5: duplicate query id 'q2'"):
        read_queries(str(queries))
    corpus = beir_folder / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + '{"_id": "d3", "title": "", "text": "again"}\n')
    with pytest.raises(InputError, match=r"corpus\.jsonl:7: duplicate passage id 'd3'"):
        load_passages(str(corpus), {"d3"})


def test_missing_files_and_splits_are_named(beir_folder, tmp_path):
    with pytest.raises(InputError, match=r"qrels/dev\.tsv: no such file \(the splits here: test, train\)"):
        beir_files(beir_folder, "dev")
    (beir_folder / "corpus.jsonl").unlink()
    with pytest.raises(InputError, match=r"corpus\.jsonl: no such file \(nor corpus\.jsonl\.gz\)"):
        beir_files(beir_folder, "test")
    with pytest.raises(InputError, match="no such folder"):
        beir_files(tmp_path / "nowhere")


def test_a_missing_id_field_is_named(beir_folder):
    (beir_folder / "queries.jsonl").write_text('{"_id": "q1"}\n')
    with pytest.raises(InputError, match=r"queries\.jsonl:1: missing field 'text'"):
        read_queries(str(beir_folder / "queries.jsonl"))


def test_scifact_test_and_train_splits(scifact):
    test = read_beir_split(scifact, "test")
    assert (len(test.queries), sum(map(len, test.qrels.values()))) == (300, 339)
    assert test.queries["1"] == "0-dimensional biomaterials show inductive properties."
    train = read_beir_split(scifact, "train", check_corpus=False)
    assert (len(train.queries), sum(map(len, train.qrels.values()))) == (809, 919)
    with gzip.open(scifact / "corpus.jsonl.gz", "rt") as lines:
        assert sum(1 for _ in lines) == 5183
