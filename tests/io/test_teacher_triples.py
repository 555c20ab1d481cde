"""Published teacher scores (`pos_score neg_score qid pid_pos pid_neg` lines) into training rows."""

from __future__ import annotations

import gzip
import json

import pytest

from reranker.cli.teacher_scores import main as teacher_main
from reranker.io.errors import InputError
from reranker.io.teacher_triples import import_teacher_triples
from reranker.io.train_rows import load_train_dataset, rows_have_teacher_scores


@pytest.fixture
def files(tmp_path, offline_data):
    queries = tmp_path / "queries.tsv"
    queries.write_text("q1\tfirst query\nq2\tsecond query\nq3\tunused\n")
    with gzip.open(offline_data / "corpus.jsonl.gz", "rt") as corpus:
        passages = [json.loads(next(corpus)) for _ in range(6)]
    collection = tmp_path / "collection.tsv"
    collection.write_text("".join(f"{p['docid']}\t{p['text']}\n" for p in passages))
    return queries, collection, [p["docid"] for p in passages], {p["docid"]: p["text"] for p in passages}


def write_triples(path, lines):
    path.write_text("".join("\t".join(map(str, line)) + "\n" for line in lines))
    return path


def test_rows_group_each_query_with_its_scores(files, tmp_path):
    queries, collection, pid, text = files
    triples = write_triples(tmp_path / "t.tsv", [
        (9.5, 1.25, "q2", pid[0], pid[1]), (7.0, -3.5, "q1", pid[2], pid[3]), (9.5, 0.5, "q2", pid[0], pid[4]),
        (7.0, 2.0, "q1", pid[2], pid[5]), (6.0, 2.0, "q1", pid[1], pid[5]),
    ])  # fmt: skip
    stats = import_teacher_triples(
        str(triples), str(queries), str(collection), str(tmp_path / "out.jsonl.gz"), run_lines=2
    )  # fmt: skip  (three sorted runs, merged)
    assert (stats.queries, stats.triples, stats.positives, stats.negatives) == (2, 5, 3, 4)

    def passage(number, score):
        return {"docid": pid[number], "title": "", "text": text[pid[number]], "score": score}

    with gzip.open(tmp_path / "out.jsonl.gz", "rt") as rows:
        assert [json.loads(row) for row in rows] == [
            {"query_id": "q1", "query": "first query", "positive_passages": [passage(2, 7.0), passage(1, 6.0)],
             "negative_passages": [passage(3, -3.5), passage(5, 2.0)]},
            {"query_id": "q2", "query": "second query", "positive_passages": [passage(0, 9.5)],
             "negative_passages": [passage(1, 1.25), passage(4, 0.5)]},
        ]  # fmt: skip
    dataset = load_train_dataset(str(tmp_path / "out.jsonl.gz"), cache_dir=str(tmp_path / "cache"))
    assert rows_have_teacher_scores(dataset)


@pytest.mark.parametrize(
    "line, message",
    [
        (("7", "1", "q9", 0, 1), r"t\.tsv:2: qid 'q9' is not in the queries"),
        (("7", "1", "q1", 0, "nope"), r"t\.tsv:2: pid_neg 'nope' is not in the collection"),
        (("nan", "1", "q1", 0, 1), r"t\.tsv:2: pos_score must be finite, got 'nan'"),
        (("7", "x", "q1", 0, 1), r"t\.tsv:2: neg_score must be a number, got 'x'"),
        (("7", "1", "q1", 0), r"t\.tsv:2: expected 5 columns, got 4"),
        (("7", "1", "q1", 2, 0), r"t\.tsv:2: passage .* is both a positive and a negative of query 'q1'"),
    ],
)
def test_bad_triples_name_the_line_and_write_nothing(files, tmp_path, line, message):
    queries, collection, pid, _ = files
    fields = [pid[value] if isinstance(value, int) else value for value in line]
    triples = write_triples(tmp_path / "t.tsv", [(7.0, 1.0, "q1", pid[0], pid[2]), fields])
    with pytest.raises(InputError, match=message):
        import_teacher_triples(str(triples), str(queries), str(collection), str(tmp_path / "out.jsonl"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collection.tsv", "queries.tsv", "t.tsv"]


def test_command_line(files, tmp_path, capsys):
    queries, collection, pid, _ = files
    triples = write_triples(tmp_path / "t.tsv", [(7.0, 1.0, "q1", pid[0], pid[2])])
    output = tmp_path / "out.jsonl"
    assert teacher_main(["--triples", str(triples), "--queries", str(queries), "--collection", str(collection),
                         "--output", str(output)]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == f"wrote 1 rows (1 positives, 1 negatives, from 1 triples) to {output}"
    assert teacher_main(["--triples", str(triples), "--output", str(output)]) == 2
    assert "error: --triples goes with --queries and --collection" in capsys.readouterr().err
