"""Mining hard negatives from a first-stage run into Tevatron training rows."""

from __future__ import annotations

import gzip
import json

import pytest

from reranker.cli.mine_negatives import main
from reranker.first_stage.mine_negatives import MiningOptions, extend_train_file, mine_negatives
from reranker.io.errors import InputError
from reranker.io.qrels import read_qrels
from reranker.io.queries import read_queries
from reranker.io.runs import read_run
from reranker.io.train_rows import load_train_dataset

RUN_Q1 = ["p1", "n1", "n2", "p2", "n3", "n4", "n5", "n6", "n7", "n8"]  # p1, p2 judged relevant; n3 judged 0


@pytest.fixture
def files(tmp_path):
    (tmp_path / "queries.tsv").write_text(
        "q1\tfirst query\nq2\tpositive not in corpus\nq3\tnot judged\nq4\tnot searched\nq5\tonly positives found\n"
    )
    (tmp_path / "qrels.txt").write_text(
        "q1 0 p1 1\nq1 0 p2 2\nq1 0 n3 0\nq2 0 p9 1\nq4 0 p1 1\nq5 0 p2 1\nq3 0 n1 0\nq9 0 p1 1\n"
    )
    run = [f"q1 Q0 {d} {r} {20 - r} bm25" for r, d in enumerate(RUN_Q1, start=1)]
    run += ["q2 Q0 n1 1 3 bm25", "q3 Q0 n1 1 3 bm25", "q5 Q0 p2 1 3 bm25"]
    (tmp_path / "run.trec").write_text("\n".join(run) + "\n")
    docids = ["p1", "p2", *(f"n{i}" for i in range(1, 9))]
    rows = [{"docid": d, "title": "T" if d == "p2" else "", "text": f"text {d}"} for d in docids]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp_path


def mine(files, **options):
    output = files / "train.jsonl"
    stats = mine_negatives(
        read_queries(str(files / "queries.tsv")),
        read_qrels(files / "qrels.txt"),
        read_run(files / "run.trec"),
        str(files / "run.trec"),
        str(files / "corpus.jsonl"),
        str(output),
        MiningOptions(**options),
    )
    return stats, [json.loads(line) for line in output.read_text().splitlines()]


def negatives(rows):
    return [p["docid"] for p in rows[0]["negative_passages"]]


def test_row_format_positives_first_by_grade(files):
    stats, rows = mine(files, sampling="top")
    assert [r["query_id"] for r in rows] == ["q1"]
    assert list(rows[0]) == ["query_id", "query", "positive_passages", "negative_passages"]
    assert rows[0]["query"] == "first query"
    assert rows[0]["positive_passages"] == [
        {"docid": "p2", "title": "T", "text": "text p2"},
        {"docid": "p1", "title": "", "text": "text p1"},
    ]
    assert rows[0]["negative_passages"][0] == {"docid": "n1", "title": "", "text": "text n1"}
    assert (stats.queries_written, stats.positives, stats.negatives) == (1, 2, 8)


def test_judged_relevant_passages_are_never_negatives_but_judged_0_are(files):
    _, rows = mine(files, sampling="top")
    assert negatives(rows) == ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"]
    # with grade-2 positives only, p1 (grade 1) is neither a positive nor a negative
    _, rows = mine(files, sampling="top", min_positive_grade=2)
    assert [p["docid"] for p in rows[0]["positive_passages"]] == ["p2"]
    assert "p1" not in negatives(rows)


def test_depth_skip_top_and_n_negatives(files):
    assert negatives(mine(files, sampling="top", depth=6)[1]) == ["n1", "n2", "n3", "n4"]
    assert negatives(mine(files, sampling="top", depth=6, skip_top=2)[1]) == ["n2", "n3", "n4"]
    assert negatives(mine(files, sampling="top", n_negatives=2)[1]) == ["n1", "n2"]
    stats, rows = mine(files, sampling="top", depth=3, n_negatives=5)
    assert negatives(rows) == ["n1", "n2"] and stats.fewer_negatives == 1


def test_random_sampling_is_seeded_and_keeps_rank_order(files):
    first = negatives(mine(files, n_negatives=3)[1])
    assert len(first) == 3 and set(first) <= set(RUN_Q1[:10]) - {"p1", "p2"}
    assert first == [d for d in RUN_Q1 if d in first]
    assert negatives(mine(files, n_negatives=3)[1]) == first
    assert any(negatives(mine(files, n_negatives=3, seed=seed)[1]) != first for seed in range(1, 6))
    assert set(negatives(mine(files, n_negatives=3, depth=5)[1])) <= {"n1", "n2", "n3"}


def test_dropped_queries_are_reported(files):
    stats, _ = mine(files)
    assert stats.dropped == {
        "without a positive in the corpus": ["q2"],
        "missing from the run": ["q4"],
        "without a negative candidate": ["q5"],
    }
    assert (stats.without_judged_positive, stats.qrels_without_query, stats.positives_missing) == (1, 1, 1)
    assert stats.report().splitlines() == [
        "dropped 1 queries without a positive in the corpus: q2",
        "dropped 1 queries missing from the run: q4",
        "dropped 1 queries without a negative candidate: q5",
        "skipped 1 queries with no judged positive in the qrels",
        "skipped 1 qrels queries that are not in the query set",
        "left out 1 judged positives that are not in the corpus",
        "1 queries have fewer negatives than asked for",  # 8 of the default 30
    ]


def test_a_candidate_missing_from_the_corpus_names_the_run_line(files):
    (files / "corpus.jsonl").write_text(
        "".join(line + "\n" for line in (files / "corpus.jsonl").read_text().splitlines() if '"n5"' not in line)
    )
    with pytest.raises(InputError, match=r"run\.trec:7: passage 'n5' is not in the corpus"):
        mine(files)
    assert not (files / "train.jsonl").exists()


def test_cli_writes_gzip_that_training_reads(files, capsys):
    output = files / "train.jsonl.gz"
    flags = ["--queries", "queries.tsv", "--qrels", "qrels.txt", "--run", "run.trec", "--corpus", "corpus.jsonl"]
    assert main([str(files / f) if f.endswith((".tsv", ".txt", ".trec", ".jsonl")) else f for f in flags]
                + ["--output", str(output), "--n_negatives", "4"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith(f"wrote 1 queries (2 positives, 4 negatives) to {output}\n")
    assert "dropped 1 queries without a positive in the corpus: q2" in out
    assert len(json.loads(gzip.open(output, "rt").readline())["negative_passages"]) == 4
    assert load_train_dataset(str(output), cache_dir=str(files / "cache")).num_rows == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--depth", "0"], "--depth must be >= 1, got 0"),
        (["--n_negatives", "0"], "--n_negatives must be >= 1, got 0"),
        (["--skip_top", "-1"], "--skip_top must be >= 0 and below --depth (200), got -1"),
        (["--depth", "5", "--skip_top", "5"], "--skip_top must be >= 0 and below --depth (5), got 5"),
        (["--min_positive_grade", "0"], "--min_positive_grade must be >= 1, got 0"),
    ],
)
def test_bad_flags_exit_2_without_output(files, flags, message, capsys):
    args = ["--queries", files / "queries.tsv", "--qrels", files / "qrels.txt", "--run", files / "run.trec"]
    args += ["--corpus", files / "corpus.jsonl", "--output", files / "train.jsonl", *flags]
    assert main([str(a) for a in args]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (files / "train.jsonl").exists()


def test_real_val_run(offline_data, tmp_path):
    """The staged BM25 top-30 of the 40 val queries over the real corpus."""
    output = tmp_path / "train.jsonl"
    queries = read_queries(str(offline_data / "val" / "queries.tsv"))
    qrels = read_qrels(offline_data / "val" / "qrels.txt")
    run_path = offline_data / "val" / "run.bm25.trec"
    run = read_run(run_path)
    options = MiningOptions(depth=30, n_negatives=20, skip_top=1, sampling="top")
    stats = mine_negatives(
        queries, qrels, run, str(run_path), str(offline_data / "corpus.jsonl.gz"), str(output), options
    )
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == stats.queries_written == 40 - sum(len(q) for q in stats.dropped.values())
    assert stats.positives_missing == 3  # the README: 41 of the 44 relevant passages have text
    for row in rows:
        judged, ranking = qrels[row["query_id"]], [e.docid for e in run[row["query_id"]]]
        chosen = [p["docid"] for p in row["negative_passages"]]
        assert not set(chosen) & set(judged)
        assert chosen == [d for d in ranking[1:30] if d not in judged][:20]
        assert all(p["docid"] in judged for p in row["positive_passages"])


def write_rows(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def passage(docid):
    return {"docid": docid, "title": "", "text": f"text {docid}"}


@pytest.fixture
def train_rows(files):
    rows = [
        {"query_id": "q1", "query": "first query", "positive_passages": [passage("p1")],
         "negative_passages": [passage("n2"), passage("n1")], "source": "kept as written"},
        {"query_id": "q7", "query": "not searched", "positive_passages": [passage("p1")],
         "negative_passages": [passage("n8")]},
    ]  # fmt: skip
    return write_rows(files / "rows.jsonl", rows)


def extend(files, train, qrels=None, **options):
    output = files / "extended.jsonl"
    stats = extend_train_file(str(train), read_run(files / "run.trec"), str(files / "run.trec"),
                              str(files / "corpus.jsonl"), str(output), MiningOptions(**options), qrels)  # fmt: skip
    return stats, [json.loads(line) for line in output.read_text().splitlines()]


def test_extend_appends_the_runs_best_new_candidates_in_rank_order(files, train_rows):
    stats, rows = extend(files, train_rows, read_qrels(files / "qrels.txt"), n_negatives=5, sampling="top")
    # the run of q1: p1 n1 n2 p2 n3 ...; p1, n1, n2 are in the row already, p2 is judged relevant
    assert [p["docid"] for p in rows[0]["negative_passages"]] == ["n2", "n1", "n3", "n4", "n5"]
    assert rows[0]["negative_passages"][2] == passage("n3")
    assert rows[0]["source"] == "kept as written" and rows[0]["positive_passages"] == [passage("p1")]
    assert rows[1]["negative_passages"] == [passage("n8")]  # q7 is not in the run: written as it was
    assert (stats.rows, stats.added, stats.not_in_run, stats.fewer_negatives) == (2, 3, 1, 1)
    assert stats.report().splitlines() == ["1 rows have no candidates in the run",
                                           "1 rows have fewer negatives than asked for"]  # fmt: skip
    # without qrels only the row's own passages are left out; a row that is full gets nothing
    assert [p["docid"] for p in extend(files, train_rows, n_negatives=4, sampling="top")[1][0]["negative_passages"]
            ] == ["n2", "n1", "p2", "n3"]  # fmt: skip
    assert extend(files, train_rows, n_negatives=2)[1][0]["negative_passages"] == [passage("n2"), passage("n1")]


def test_extend_random_sampling_is_seeded_and_keeps_rank_order(files, train_rows):
    added = [p["docid"] for p in extend(files, train_rows, n_negatives=5)[1][0]["negative_passages"][2:]]
    assert len(added) == 3 and added == [d for d in RUN_Q1 if d in added] and not {"p1", "n1", "n2"} & set(added)
    assert [p["docid"] for p in extend(files, train_rows, n_negatives=5)[1][0]["negative_passages"][2:]] == added


@pytest.mark.parametrize(
    "change, message",
    [
        ({"query_id": ""}, r"rows\.jsonl:1: field 'query_id' is missing or empty: rows are matched to the run by it"),
        ({"positive_passages": [{**passage("p1"), "score": 1.0}],
          "negative_passages": [{**passage("n1"), "score": 0.5}]},
         r"rows\.jsonl:1: the row has teacher scores: add candidates before the teacher stage"),
    ],
)  # fmt: skip
def test_extend_refuses_rows_without_ids_or_with_scores(files, change, message):
    train = write_rows(files / "rows.jsonl", [{"query_id": "q1", "query": "first query",
                                               "positive_passages": [passage("p1")],
                                               "negative_passages": [passage("n1")], **change}])  # fmt: skip
    with pytest.raises(InputError, match=message):
        extend(files, train)
    assert not (files / "extended.jsonl").exists()


def test_cli_extend(files, train_rows, capsys):
    output = files / "extended.jsonl.gz"
    args = ["--extend", train_rows, "--run", files / "run.trec", "--corpus", files / "corpus.jsonl"]
    assert main([str(a) for a in [*args, "--output", output, "--n_negatives", "4", "--sampling", "top"]]) == 0
    assert capsys.readouterr().out.splitlines() == [f"wrote 2 rows (2 negatives added) to {output}",
                                                    "1 rows have no candidates in the run",
                                                    "1 rows have fewer negatives than asked for"]  # fmt: skip
    assert load_train_dataset(str(output), cache_dir=str(files / "cache")).num_rows == 2
    capsys.readouterr()
    both = "--extend takes the queries from the rows: give --extend or --queries, not both"
    for extra, message in [(["--queries", files / "queries.tsv"], both), ([], "--corpus is required with --extend")]:
        flags = args[:4] if not extra else args
        assert main([str(a) for a in [*flags, *extra, "--output", files / "bad.jsonl"]]) == 2
        assert capsys.readouterr().err.strip() == f"error: {message}"
        assert not (files / "bad.jsonl").exists()


def test_extend_names_the_run_line_of_a_candidate_missing_from_the_corpus(files, train_rows):
    lines = (files / "corpus.jsonl").read_text().splitlines()
    (files / "corpus.jsonl").write_text("".join(line + "\n" for line in lines if '"n3"' not in line))
    with pytest.raises(InputError, match=r"run\.trec:5: passage 'n3' is not in the corpus"):
        extend(files, train_rows)
    assert not (files / "extended.jsonl").exists()
