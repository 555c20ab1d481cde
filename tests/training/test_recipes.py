"""Every recipe in `recipes/` trains (2 steps, a tiny model, a tiny set) with its own flags."""

from __future__ import annotations

import gzip
import itertools

import pytest

from reranker import Reranker
from reranker.cli.train import main as train_main
from reranker.io.summary import read_summary
from reranker.training.teacher_scores import CrossEncoderTeacher, score_training_file
from tests.conftest import ROOT

RECIPES = sorted(path for path in (ROOT / "recipes").glob("*.args"))


@pytest.fixture(scope="module")
def scored_rows(tmp_path_factory, offline_data, tiny_model_dir):
    """Four real training rows with a (tiny, random) teacher's scores."""
    folder = tmp_path_factory.mktemp("recipes")
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        (folder / "train.jsonl").write_text("".join(itertools.islice(rows, 4)))
    teacher = CrossEncoderTeacher(Reranker.from_pretrained(str(tiny_model_dir)).scorer)
    score_training_file(teacher, str(tiny_model_dir), str(folder / "train.jsonl"), str(folder / "scored.jsonl"),
                        show_progress=False)  # fmt: skip
    return folder / "scored.jsonl"


def test_the_recipes_are_there():
    assert {path.stem for path in RECIPES} >= {"reference", "distill", "lce-group32"}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=[path.stem for path in RECIPES])
def test_recipe_trains_two_steps(recipe, tiny_model_dir, scored_rows, tmp_path):
    output = tmp_path / "model"
    flags = ["--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(scored_rows), "--output_dir",
             str(output), "--max_steps", "2", "--per_device_train_batch_size", "2", "--disable_tqdm", "1"]  # fmt: skip
    assert train_main(["--args_file", str(recipe), *flags]) == 0
    arguments = read_summary(output)["arguments"]
    given = dict(zip(recipe.read_text().split()[::2], recipe.read_text().split()[1::2], strict=False))
    assert arguments["loss"] == given["--loss"] and str(arguments["train_n_passages"]) == given["--train_n_passages"]
    assert read_summary(output)["steps"] == 2


def test_a_missing_args_file_is_an_error(capsys):
    assert train_main(["--args_file", "recipes/no-such.args", "--output_dir", "x", "--model_name_or_path", "m"]) == 2
    assert capsys.readouterr().err.strip() == "error: --args_file recipes/no-such.args: no such file"
