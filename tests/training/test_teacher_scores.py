"""The teacher stage: the scores sentence-transformers or our engine give, written into the rows, resumable; rows
with scores refused unless overwritten (and skipped by the demo); an ensemble of teachers."""

from __future__ import annotations

import gc
import gzip
import itertools
import json
import os
import shutil
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch

from reranker import Reranker
from reranker.cli.teacher_scores import main as teacher_main
from reranker.io.errors import ParameterError
from reranker.io.runs import format_score
from reranker.io.summary import read_summary
from reranker.io.train_rows import load_train_dataset, rows_have_teacher_scores, without_scores
from reranker.model.random_model import save_random_bert
from reranker.training.teacher_scores import (
    BiEncoderTeacher,
    CrossEncoderTeacher,
    TeacherLoader,
    detect_teacher_type,
    score_training_file,
    score_with_teachers,
)
from tests.conftest import OFFLINE, ROOT

FLAG_EMBEDDING = OFFLINE.parent / "FlagEmbedding" / "msmarco.jsonl"  # rows with their published teacher scores


def tevatron_rows(offline_data, count):
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        return [json.loads(line) for line in itertools.islice(rows, count)]


def flag_rows(count):
    return [json.loads(line) for line in FLAG_EMBEDDING.read_text().splitlines()[:count]]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    return path


@pytest.fixture(scope="module")
def train5(tmp_path_factory, offline_data):
    """Three real training rows (93 passages) and two FlagEmbedding rows (52) without their scores, in one file."""
    flag = [{key: value for key, value in row.items() if not key.endswith("_scores")} for row in flag_rows(2)]
    return write_jsonl(tmp_path_factory.mktemp("teacher") / "train.jsonl", tevatron_rows(offline_data, 3) + flag)


def with_published_scores(record):
    """A Tevatron row as the published teacher triples import writes it (a score on every passage)."""
    scored = {key: [{**p, "score": 9.5 if key.startswith("positive") else 1.25} for p in record[key]]
              for key in ("positive_passages", "negative_passages")}  # fmt: skip
    return {**record, **scored}


@pytest.fixture(scope="module")
def scored5(tmp_path_factory, offline_data):
    """The rows of `train5`, each with teacher scores: the FlagEmbedding rows as published."""
    rows = [with_published_scores(row) for row in tevatron_rows(offline_data, 3)] + flag_rows(2)
    return write_jsonl(tmp_path_factory.mktemp("scored") / "scored.jsonl", rows)


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
        if "pos" in before:  # FlagEmbedding: the same row, with scores
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


def scored_row(kind, offline_data):
    """A real row with teacher scores: all of a Tevatron row's, a FlagEmbedding row's, or one passage's (mixed)."""
    row = tevatron_rows(offline_data, 2)[1]
    if kind == "tevatron":
        return with_published_scores(row)
    if kind == "flag_embedding":
        return flag_rows(1)[0]
    negatives = [{**p, "score": 0.5} if number == 2 else p for number, p in enumerate(row["negative_passages"])]
    return {**row, "negative_passages": negatives}


@pytest.mark.parametrize(
    "kind, field",
    [
        ("tevatron", "positive_passages[0]: field 'score'"),
        ("flag_embedding", "field 'pos_scores'"),
        ("mixed", "negative_passages[2]: field 'score'"),  # refused all the same (training would refuse it too)
    ],
)
def test_rows_with_scores_are_refused(tiny_model_dir, offline_data, tmp_path, capsys, kind, field):
    train = write_jsonl(tmp_path / "t.jsonl", [tevatron_rows(offline_data, 1)[0], scored_row(kind, offline_data)])
    output = tmp_path / "out.jsonl"
    assert teacher_main(["--teacher", str(tiny_model_dir), "--input", str(train), "--output", str(output)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (  # after the progress bars
        f"error: {train}:2: {field} is already set; pass --overwrite_scores to replace the row's teacher scores"
    )  # fmt: skip
    assert not output.exists()


def test_scored_rows_are_refused_before_a_teacher_loads(scored5, tmp_path, capsys):
    def load():
        raise AssertionError("the teacher was loaded")

    with pytest.raises(ParameterError, match=r"scored\.jsonl:1: positive_passages\[0\]: field 'score' is already set"):
        score_with_teachers([TeacherLoader("big", load)], str(scored5), str(tmp_path / "out.jsonl"))
    assert not list(tmp_path.iterdir())


def test_the_library_refuses_scored_rows_too(tiny_model_dir, scored5, tmp_path):
    teacher = CrossEncoderTeacher(Reranker.from_pretrained(str(tiny_model_dir)).scorer)
    with pytest.raises(ParameterError) as refused:
        score_training_file(teacher, str(tiny_model_dir), str(scored5), str(tmp_path / "out.jsonl"),
                            show_progress=False)  # fmt: skip
    assert str(refused.value) == (f"{scored5}:1: positive_passages[0]: field 'score' is already set; pass "
                                  "overwrite_scores to replace the row's teacher scores")  # fmt: skip


def test_overwrite_scores_replaces_them(tiny_model_dir, train5, scored5, tmp_path):
    fresh, overwritten = tmp_path / "fresh.jsonl", tmp_path / "overwritten.jsonl"
    assert teacher_main(["--teacher", str(tiny_model_dir), "--input", str(train5), "--output", str(fresh)]) == 0
    assert teacher_main(["--teacher", str(tiny_model_dir), "--input", str(scored5), "--output", str(overwritten),
                         "--overwrite_scores"]) == 0  # fmt: skip
    # the same rows with the teacher's scores, whatever scores they had (9.5, 96.6875, ...)
    assert read_jsonl(overwritten) == read_jsonl(fresh)
    assert 9.5 not in passage_scores(read_jsonl(overwritten)[0])


def test_has_scores_answers_for_the_demo(train5, scored5, tmp_path, capsys, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    assert teacher_main(["--input", str(scored5), "--has_scores"]) == 0
    assert capsys.readouterr().out.strip() == f"{scored5}: every passage carries a teacher score"
    assert teacher_main(["--input", str(train5), "--has_scores"]) == 1
    assert capsys.readouterr().out.strip() == f"{train5}: not every passage carries a teacher score"
    half = write_jsonl(tmp_path / "half.jsonl", read_jsonl(scored5)[:2] + read_jsonl(train5)[2:])
    assert teacher_main(["--input", str(half), "--has_scores"]) == 1  # the stage then refuses it, by line


def demo_teacher_stage():
    """The teacher stage of scripts/demo.sh as it stands: its `if grep ... --loss` block, to the matching `fi`."""
    lines = (ROOT / "scripts" / "demo.sh").read_text().splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("if grep -qE -- '--loss"))
    end = next(number for number in range(start, len(lines)) if lines[number] == "fi")
    return "\n".join(lines[start : end + 1])


@pytest.mark.slow
def test_demo_skips_the_teacher_stage_for_scored_rows(tiny_model_dir, train5, scored5, tmp_path):
    def demo(train, teacher=("TEACHER", str(tiny_model_dir))):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache"),
               "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
               "ARGS": "recipes/sample/bi-encoder-self-distill.args", "TRAIN": str(train),
               "OUT": str(tmp_path / "demo"), teacher[0]: teacher[1]}  # fmt: skip
        script = f'set -euo pipefail\n{demo_teacher_stage()}\necho "training on $TRAIN"'
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.splitlines()

    assert demo(scored5)[-2:] == [f"skipping the teacher stage: {scored5} already carries teacher scores",
                                  f"training on {scored5}"]  # fmt: skip
    assert not (tmp_path / "demo").exists()
    teacher_output = tmp_path / "demo" / "train.teacher.jsonl.gz"
    assert demo(train5)[-1] == f"training on {teacher_output}" and teacher_output.exists()
    # without TEACHER the start model is the teacher (self-distillation), not a fixed MiniLM
    shutil.rmtree(tmp_path / "demo")
    assert demo(train5, teacher=("MODEL", str(tiny_model_dir)))[-1] == f"training on {teacher_output}"
    assert read_summary(teacher_output)["teacher"] == str(tiny_model_dir)


@pytest.fixture(scope="module")
def spread_model_dir(tmp_path_factory, tokenizer):
    """Another tiny random cross-encoder (its own seed) whose scores spread (~0.1)."""
    return save_random_bert(tmp_path_factory.mktemp("spread_bert"), tokenizer.name_or_path, layers=2, hidden=128,
                            heads=2, intermediate=256, seed=1, initializer_range=0.1)  # fmt: skip


@pytest.mark.slow
def test_two_teachers_give_the_weighted_sum_of_their_z_scores(spread_model_dir, minilm_path, train5, tmp_path):
    cross, bi = str(spread_model_dir), str(minilm_path)  # a cross-encoder and a bi-encoder, each detected as such
    alone = {}
    for name, teacher in (("cross", cross), ("bi", bi)):
        alone[name] = tmp_path / f"{name}.jsonl"
        assert teacher_main(["--teacher", teacher, "--input", str(train5), "--output", str(alone[name])]) == 0
    ensemble = tmp_path / "ensemble.jsonl"
    assert teacher_main(["--teacher", cross, "--teacher", bi, "--teacher_weights", "0.8,0.2", "--input",
                         str(train5), "--output", str(ensemble)]) == 0  # fmt: skip

    def z(scores):  # the file holds the shortest text of each float32 score: the teacher's float32 value again
        scores = np.float32(scores).astype(np.float64)
        return (scores - scores.mean()) / scores.std()

    rows = zip(read_jsonl(alone["cross"]), read_jsonl(alone["bi"]), read_jsonl(ensemble), strict=True)
    for cross_row, bi_row, row in rows:
        expected = 0.8 * z(passage_scores(cross_row)) + 0.2 * z(passage_scores(bi_row))
        assert passage_scores(row) == [float(format_score(score)) for score in expected]
        assert without_scores(row) == without_scores(cross_row)
    summary = read_summary(ensemble)
    assert summary["teachers"] == [
        {"teacher": cross, "teacher_type": "cross-encoder", "scores": f"{ensemble}.teacher1.scores"},
        {"teacher": bi, "teacher_type": "bi-encoder", "scores": f"{ensemble}.teacher2.scores"},
    ]  # fmt: skip
    assert (summary["teacher_weights"], summary["normalisation"]) == ([0.8, 0.2], "per-query z-score")
    assert read_summary(alone["cross"])["normalisation"] is None  # one teacher alone: its raw scores


def test_an_ensemble_loads_one_teacher_at_a_time(tiny_model_dir, spread_model_dir, train5, tmp_path):
    loaded = []

    def loader(path):
        def load():
            assert all(teacher() is None for teacher in loaded), "the previous teacher is still in memory"
            teacher = CrossEncoderTeacher(Reranker.from_pretrained(str(path)).scorer)
            loaded.append(weakref.ref(teacher))
            return teacher

        return TeacherLoader(str(path), load)

    gc.collect()
    teachers = [loader(tiny_model_dir), loader(spread_model_dir)]
    output = str(tmp_path / "out.jsonl")
    stats = score_with_teachers(teachers, str(train5), output, show_progress=False)
    assert (len(loaded), stats.rows, read_summary(output)["teacher_weights"]) == (2, 5, [0.5, 0.5])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--teacher_weights", "0.8"], "--teacher_weights gives 1 weights for 2 teachers in --teacher"),
        (["--teacher_weights", "0.8,0.1,0.1"], "--teacher_weights gives 3 weights for 2 teachers in --teacher"),
        (["--teacher_weights", "0.8,-0.2"], "--teacher_weights must be positive, got '0.8,-0.2'"),
        (["--teacher_weights", "1,0"], "--teacher_weights must be positive, got '1,0'"),
        (["--teacher_weights", "1,nan"], "--teacher_weights must be finite numbers, got '1,nan'"),
        (["--teacher_weights", "0.8,x"], "--teacher_weights must be numbers, got '0.8,x'"),
        (
            ["--teacher_type", "cross-encoder,bi-encoder,bi-encoder"],
            "--teacher_type gives 3 types for 2 teachers in --teacher",
        ),
    ],
)
def test_bad_teacher_weights_or_types_are_refused(tiny_model_dir, train5, tmp_path, capsys, flags, message):
    output = tmp_path / "out.jsonl"
    assert teacher_main(["--teacher", str(tiny_model_dir), "--teacher", str(tiny_model_dir), *flags, "--input",
                         str(train5), "--output", str(output)]) == 2  # fmt: skip
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not list(tmp_path.iterdir())  # refused before any teacher loads or any file is written
