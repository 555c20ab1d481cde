"""The teacher stage: the scores sentence-transformers or our engine give, written into the rows, resumable."""

from __future__ import annotations

import gzip
import itertools
import json

import numpy as np
import pytest
import torch

from reranker import Reranker
from reranker.cli.teacher_scores import main as teacher_main
from reranker.io.summary import read_summary
from reranker.io.train_rows import load_train_dataset, rows_have_teacher_scores
from reranker.training.teacher_scores import (
    BiEncoderTeacher,
    CrossEncoderTeacher,
    detect_teacher_type,
    score_training_file,
)
from tests.conftest import OFFLINE


@pytest.fixture(scope="module")
def train5(tmp_path_factory, offline_data):
    """Three real training rows (93 passages) and two FlagEmbedding rows (52), in one file."""
    path = tmp_path_factory.mktemp("teacher") / "train.jsonl"
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        lines = list(itertools.islice(rows, 3))
    flag = (OFFLINE.parent / "FlagEmbedding" / "msmarco.jsonl").read_text().splitlines()[:2]
    path.write_text("".join(lines) + "\n".join(flag) + "\n")
    return path


def read_jsonl(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as rows:
        return [json.loads(line) for line in rows]


def passage_scores(record):
    if "pos" in record:
        return record["pos_scores"] + record["neg_scores"]
    return [p["score"] for key in ("positive_passages", "negative_passages") for p in record[key]]


@pytest.mark.slow
def test_bi_encoder_scores_are_sentence_transformers_cosines(minilm_path, train5, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import cos_sim

    minilm_path = str(minilm_path)
    teacher = BiEncoderTeacher(minilm_path, torch.device("cpu"), batch_size=16)
    assert detect_teacher_type(minilm_path) == "bi-encoder"
    stats = score_training_file(teacher, minilm_path, str(train5), str(tmp_path / "out.jsonl.gz"), chunk_size=40,
                                show_progress=False)  # fmt: skip
    original, scored = read_jsonl(train5), read_jsonl(tmp_path / "out.jsonl.gz")
    assert (stats.rows, stats.passages) == (5, sum(len(passage_scores(r)) for r in scored))
    model = SentenceTransformer(minilm_path, device="cpu")
    for before, after in zip(original, scored, strict=True):
        if "pos" in before:  # FlagEmbedding: the same row, its scores replaced
            assert {k: v for k, v in after.items() if not k.endswith("_scores")} == {
                k: v for k, v in before.items() if not k.endswith("_scores")}  # fmt: skip
            texts = before["pos"] + before["neg"]
        else:
            texts = [p["text"] for key in ("positive_passages", "negative_passages") for p in before[key]]
        expected = cos_sim(model.encode([after["query"]], convert_to_tensor=True),
                           model.encode(texts, convert_to_tensor=True))[0]  # fmt: skip
        np.testing.assert_allclose(passage_scores(after), expected.numpy(), atol=2e-6)
    rows = load_train_dataset(str(tmp_path / "out.jsonl.gz"), cache_dir=str(tmp_path / "cache"))
    assert len(rows) == 5 and rows_have_teacher_scores(rows)


def test_cross_encoder_scores_are_our_engine(tiny_model_dir, train5, tmp_path):
    reranker = Reranker.from_pretrained(str(tiny_model_dir))
    assert detect_teacher_type(str(tiny_model_dir)) == "cross-encoder"
    score_training_file(CrossEncoderTeacher(reranker.scorer), str(tiny_model_dir), str(train5),
                        str(tmp_path / "out.jsonl"), show_progress=False)  # fmt: skip
    pairs, written = [], []
    for record in read_jsonl(tmp_path / "out.jsonl"):
        if "pos" in record:
            pairs += [(record["query"], text) for text in record["pos"] + record["neg"]]
        else:
            pairs += [(record["query"], p["title"], p["text"]) for key in ("positive_passages", "negative_passages")
                      for p in record[key]]  # fmt: skip
        written += passage_scores(record)
    # one chunk holds every pair, batched as predict batches them: the same float32 values
    assert np.float32(written).tolist() == reranker.predict(pairs).tolist()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_bytes(tiny_model_dir, train5, tmp_path, monkeypatch):
    teacher = CrossEncoderTeacher(Reranker.from_pretrained(str(tiny_model_dir)).scorer)
    whole = tmp_path / "whole.jsonl.gz"
    score_training_file(teacher, str(tiny_model_dir), str(train5), str(whole), chunk_size=30, show_progress=False)
    real, calls = teacher.score, []

    def crash_on_third_chunk(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")
        return real(*args)

    monkeypatch.setattr(teacher, "score", crash_on_third_chunk)
    resumed = tmp_path / "resumed.jsonl.gz"
    with pytest.raises(KeyboardInterrupt):
        score_training_file(teacher, str(tiny_model_dir), str(train5), str(resumed), chunk_size=30,
                            show_progress=False)  # fmt: skip
    assert not resumed.exists() and (tmp_path / "resumed.jsonl.gz.partial").exists()
    monkeypatch.setattr(teacher, "score", real)
    stats = score_training_file(teacher, str(tiny_model_dir), str(train5), str(resumed), chunk_size=30,
                                show_progress=False)  # fmt: skip
    assert resumed.read_bytes() == whole.read_bytes() and stats.rows == 5
    assert read_summary(resumed)["fingerprint"] == read_summary(whole)["fingerprint"]
    again = score_training_file(teacher, str(tiny_model_dir), str(train5), str(resumed), chunk_size=30)
    assert again.seconds == 0.0  # already complete


def test_command_line(tiny_model_dir, train5, tmp_path, capsys):
    output = tmp_path / "out.jsonl"
    assert teacher_main(["--teacher", str(tiny_model_dir), "--input", str(train5), "--output", str(output)]) == 0
    assert capsys.readouterr().out.strip().startswith("wrote 5 rows (")
    assert read_summary(output)["teacher_type"] == "cross-encoder"
    assert teacher_main(["--teacher", str(tiny_model_dir), "--input", str(train5), "--output", str(output),
                         "--fp16", "--bf16"]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == "error: --fp16 and --bf16 are mutually exclusive"
