"""The recipes: full-scale ones in `recipes/`, the offline sample's variants in `recipes/sample/`. Each trains 2 steps
(a tiny model, four real rows with a tiny teacher's scores) with its own flags, to finite losses, and its head,
dropout, logit scale and loss settings reach the model and the loss; the full-scale `reference` is the seed's
command, flag for flag."""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import math
import re
import shlex

import pytest

from reranker import Reranker
from reranker.cli.common import parse_dataclasses
from reranker.cli.train import main as train_main
from reranker.io.summary import read_summary
from reranker.model.arguments import ModelArguments
from reranker.model.backbone import HEAD_RECORD
from reranker.model.loading import load_cross_encoder
from reranker.model.segment_cosine import CLIP_LOGIT_SCALE, BertForSegmentCosine
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments
from reranker.training.losses import RankingLoss
from reranker.training.teacher_scores import CrossEncoderTeacher, score_training_file
from tests.conftest import ROOT

FULL_SCALE = sorted((ROOT / "recipes").glob("*.args"))
SAMPLE = sorted((ROOT / "recipes" / "sample").glob("*.args"))
RECIPES = FULL_SCALE + SAMPLE
TYPES = (ModelArguments, TrainDataArguments, RerankerTrainingArguments)
# what a run is called and where it writes, not how it trains
NOT_HYPERPARAMETERS = {"output_dir", "logging_dir", "logging_steps", "save_steps", "overwrite_output_dir", "run_name"}


def recipe_id(path) -> str:
    return str(path.relative_to(ROOT / "recipes").with_suffix(""))


def recipe_flags(path) -> dict[str, str]:
    """A recipe's flags as {name: value}; a flag without a value (a boolean switched on) maps to "true"."""
    words, flags = path.read_text().split(), {}
    for word, after in itertools.zip_longest(words, words[1:]):
        if word.startswith("--"):
            flags[word[2:]] = "true" if after is None or after.startswith("--") else after
    return flags


def seed_training_command() -> list[str]:
    """The flags of the `train_reranker.py` command in the README's reference commands (the seed's)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### The reference commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    command = re.search(r"python train_reranker\.py (.*?)(?:\n\n|$)", block.replace("\\\n", " "), re.S).group(1)
    return shlex.split(command)


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
    assert {recipe_id(path) for path in FULL_SCALE} == {
        "reference", "distill-ensemble", "distill-ensemble-margin-mse", "lce-group32", "rankllama-lora", "qwen3-lora"
    }  # fmt: skip
    assert {recipe_id(path) for path in SAMPLE} >= {
        "sample/reference", "sample/distill-ensemble", "sample/lce-group32", "sample/bi-encoder-self-distill",
        "sample/bi-encoder-lce",
    }  # fmt: skip


def test_the_reference_recipe_is_the_seeds_command():
    """Every setting of `recipes/reference.args` is what the seed's command gives (its flags, or the defaults it
    leaves in place), down to the parsed dataclasses."""
    seed = seed_training_command()
    assert {"--learning_rate", "--train_n_passages", "--per_device_train_batch_size"} <= set(seed)
    paths = ["--model_name_or_path", "m", "--dataset_name", "d.jsonl", "--output_dir", "o"]
    from_seed = parse_dataclasses(TYPES, seed[:] + paths)
    from_recipe = parse_dataclasses(TYPES, ["--args_file", str(ROOT / "recipes" / "reference.args"), *paths])
    for ours, theirs in zip(from_recipe, from_seed, strict=True):
        differing = {field.name for field in dataclasses.fields(ours)
                     if getattr(ours, field.name) != getattr(theirs, field.name)} - NOT_HYPERPARAMETERS  # fmt: skip
        assert not differing, {name: (getattr(ours, name), getattr(theirs, name)) for name in differing}


def expected_model_settings(flags: dict[str, str]) -> dict:
    """What the recipe's flags must make of the model's config."""
    expected = {}
    if "dropout" in flags:
        expected["hidden_dropout_prob"] = expected["attention_probs_dropout_prob"] = float(flags["dropout"])
    if flags.get("score_head") == "segment_cosine":
        expected["cross_attention_bias"] = float(flags.get("cross_attention_bias", -4.0))
        expected["logit_scale"] = float(flags.get("logit_scale", CLIP_LOGIT_SCALE))
        expected["learn_logit_scale"] = "fixed_logit_scale" not in flags
    return expected


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=[recipe_id(path) for path in RECIPES])
def test_recipe_trains_two_steps(recipe, tiny_model_dir, tiny_decoders, scored_rows, tmp_path):
    output = tmp_path / "model"
    given = recipe_flags(recipe)
    if given.get("score_head") in DECODER_FAMILY:
        decoder_recipe_trains_two_steps(recipe, tiny_decoders[DECODER_FAMILY[given["score_head"]]], scored_rows,
                                        output, given)  # fmt: skip
        return
    flags = ["--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(scored_rows), "--output_dir",
             str(output), "--max_steps", "2", "--per_device_train_batch_size", "2", "--disable_tqdm", "1",
             "--save_strategy", "no", "--logging_steps", "1"]  # fmt: skip
    assert train_main(["--args_file", str(recipe), *flags]) == 0
    losses = [entry["loss"] for entry in json.loads((output / "trainer_state.json").read_text())["log_history"]
              if "loss" in entry]  # fmt: skip
    assert losses and all(math.isfinite(loss) for loss in losses), losses
    assert read_summary(output)["steps"] == 2

    model = load_cross_encoder(str(output))
    assert isinstance(model, BertForSegmentCosine) == (given.get("score_head") == "segment_cosine")
    for name, value in expected_model_settings(given).items():
        assert getattr(model.config, name) == pytest.approx(value), name
    if "logit_scale" in given and "fixed_logit_scale" in given:
        assert model.logit_scale.item() == pytest.approx(float(given["logit_scale"]))  # not trained

    arguments = read_summary(output)["arguments"]  # what the trainer built its loss from
    loss = RankingLoss.parse(arguments["loss"], arguments["loss_weights"], arguments["distill_temperature"])
    assert ",".join(loss.names) == given.get("loss", "lce")
    weights = (
        [float(w) for w in given["loss_weights"].split(",")] if "loss_weights" in given else [1.0] * len(loss.names)
    )
    assert list(loss.weights) == pytest.approx(weights)
    assert loss.temperature == pytest.approx(float(given.get("distill_temperature", 1.0)))


DECODER_FAMILY = {"last_token": "llama", "yes_no": "qwen3"}  # the tiny model a decoder recipe trains


def decoder_recipe_trains_two_steps(recipe, model_dir, scored_rows, output, given):
    """An LLM recipe: 2 steps of LoRA on a tiny decoder (groups cut to 4, as the rows have few passages), to finite
    losses, an adapter of the recipe's rank that records the recipe's head."""
    flags = ["--model_name_or_path", str(model_dir), "--dataset_name", str(scored_rows), "--output_dir",
             str(output), "--max_steps", "2", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps",
             "1", "--train_n_passages", "4", "--disable_tqdm", "1", "--save_strategy", "no",
             "--logging_steps", "1"]  # fmt: skip
    assert train_main(["--args_file", str(recipe), *flags]) == 0
    losses = [entry["loss"] for entry in json.loads((output / "trainer_state.json").read_text())["log_history"]
              if "loss" in entry]  # fmt: skip
    assert losses and all(math.isfinite(loss) for loss in losses), losses
    adapter = json.loads((output / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (int(given["lora_r"]), float(given["lora_alpha"]))
    assert json.loads((output / HEAD_RECORD).read_text())["score_head"] == given["score_head"]
    assert read_summary(output)["arguments"]["gradient_checkpointing"] is True


def test_a_missing_args_file_is_an_error(capsys):
    assert train_main(["--args_file", "recipes/no-such.args", "--output_dir", "x", "--model_name_or_path", "m"]) == 2
    assert capsys.readouterr().err.strip() == "error: --args_file recipes/no-such.args: no such file"
