"""Training rows with teacher scores: Tevatron rows with `score`s, FlagEmbedding rows, and their bad input."""

from __future__ import annotations

import json

import pytest

from reranker.io.errors import InputError
from reranker.io.train_rows import load_train_dataset, rows_have_teacher_scores
from tests.conftest import OFFLINE

FLAG_EMBEDDING = OFFLINE.parent / "FlagEmbedding" / "msmarco.jsonl"


def passage(text, score=None):
    return {"docid": text[:3], "title": "", "text": text, **({} if score is None else {"score": score})}


def tevatron(*negative_scores, positive_score=1.5):
    return {"query_id": "1", "query": "q", "positive_passages": [passage("pos", positive_score)],
            "negative_passages": [passage(f"neg{i}", s) for i, s in enumerate(negative_scores)]}  # fmt: skip


def write(path, *rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_flag_embedding_rows_load_with_their_scores(offline_data, tmp_path):
    rows = load_train_dataset(str(FLAG_EMBEDDING), cache_dir=str(tmp_path))
    first = json.loads(FLAG_EMBEDDING.read_text().splitlines()[0])
    assert len(rows) == 10 and rows_have_teacher_scores(rows)
    assert rows[0]["query"] == first["query"] and rows[0]["query_id"] == ""
    assert [p["text"] for p in rows[0]["negative_passages"]] == first["neg"]
    assert [p["score"] for p in rows[0]["positive_passages"]] == first["pos_scores"] == [96.6875]
    assert [p["score"] for p in rows[0]["negative_passages"]] == first["neg_scores"]


def test_tevatron_rows_with_and_without_scores(offline_data, tmp_path):
    assert not rows_have_teacher_scores(load_train_dataset(str(offline_data / "train.jsonl.gz"),
                                                           cache_dir=str(tmp_path / "c1")))  # fmt: skip
    scored = load_train_dataset(str(write(tmp_path / "t.jsonl", tevatron(0.5, -2))), cache_dir=str(tmp_path / "c2"))
    assert rows_have_teacher_scores(scored)
    assert [p["score"] for p in scored[0]["negative_passages"]] == [0.5, -2.0]
    mixed = load_train_dataset(str(write(tmp_path / "m.jsonl", tevatron(0.5), tevatron(None, positive_score=None))),
                               cache_dir=str(tmp_path / "c3"))  # fmt: skip
    assert not rows_have_teacher_scores(mixed)  # one row scored, one not: a teacher loss cannot train on it


@pytest.mark.parametrize(
    "row, message",
    [
        (tevatron(0.5, None), r"t\.jsonl:1: negative_passages\[1\]: missing field 'score' \(other passages of "
                              r"the row have one\)"),
        (tevatron(0.5, positive_score=None), r"t\.jsonl:1: positive_passages\[0\]: missing field 'score'"),
        ('{"query": "q", "positive_passages": [{"text": "p", "score": NaN}], "negative_passages": [{"text": "n", '
         '"score": 1}]}', r"t\.jsonl:1: malformed JSON \(unexpected character, expected a JSON value at column 61\)"),
        (tevatron("1.5"), r"t\.jsonl:1: negative_passages\[0\]: score must be a finite number, got '1.5'"),
        (tevatron(float("inf")), r"t\.jsonl:1: malformed JSON"),  # Infinity is no JSON, whatever `json` writes
        ({"query": "q", "pos": ["p"], "neg": ["n1", "n2"], "pos_scores": [1], "neg_scores": [2]},
         r"t\.jsonl:1: field 'neg_scores' must be a list of 2 scores, one per 'neg' passage"),
        ({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1]},
         r"t\.jsonl:1: missing field 'neg_scores' \(the row has 'pos_scores'\)"),
        ({"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1], "neg_scores": [True]},
         r"t\.jsonl:1: neg_scores\[0\] must be a finite number, got True"),
        ({"query": "q", "pos": [], "neg": ["n"]}, r"t\.jsonl:1: field 'pos' must be a non-empty list"),
        ({"query": "q", "pos": ["p"], "neg": [" "]}, r"t\.jsonl:1: neg\[0\] must be a non-empty string"),
    ],
)  # fmt: skip
def test_bad_rows_name_file_line_and_field(tmp_path, row, message):
    with pytest.raises(InputError, match=message):
        load_train_dataset(str(write(tmp_path / "t.jsonl", row)), cache_dir=str(tmp_path))
