"""`reranker.train`: the training stage from Python, with dataclasses or with the flags as keywords."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

import reranker
from reranker.io.errors import ParameterError
from reranker.io.summary import read_summary
from reranker.model.arguments import ModelArguments
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments

FLAGS = {"per_device_train_batch_size": 4, "train_n_passages": 4, "p_max_len": 64, "max_steps": 2, "seed": 5,
         "learning_rate": 1e-3, "disable_tqdm": True}  # fmt: skip


@pytest.mark.slow
def test_keyword_flags_and_dataclasses_train_the_same_model(tiny_model_without_dropout, train_file, tmp_path):
    folder = reranker.train(output_dir=str(tmp_path / "kw"), model_name_or_path=str(tiny_model_without_dropout),
                            dataset_name=str(train_file), **FLAGS)  # fmt: skip
    assert folder == tmp_path / "kw"
    assert read_summary(folder)["steps"] == 2 and (folder / "README.md").is_file()
    data = {name: FLAGS[name] for name in ("train_n_passages", "p_max_len")}
    training = {name: value for name, value in FLAGS.items() if name not in data}
    same = reranker.train(
        ModelArguments(model_name_or_path=str(tiny_model_without_dropout)),
        TrainDataArguments(dataset_name=str(train_file), **data),
        RerankerTrainingArguments(output_dir=str(tmp_path / "dc"), **training),
    )
    ours, theirs = (AutoModelForSequenceClassification.from_pretrained(f).state_dict() for f in (folder, same))
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)


def test_bad_calls_name_the_parameter(tiny_model_dir, train_file, tmp_path):
    with pytest.raises(ParameterError, match="unknown training flag: n_passages"):
        reranker.train(output_dir=str(tmp_path), model_name_or_path=str(tiny_model_dir), dataset_name="x",
                       n_passages=4)  # fmt: skip
    with pytest.raises(ParameterError, match="train_n_passages must be >= 2"):
        reranker.train(output_dir=str(tmp_path), model_name_or_path=str(tiny_model_dir),
                       dataset_name=str(train_file), train_n_passages=1)  # fmt: skip
    with pytest.raises(ParameterError, match="model_args, data_args and training_args go together"):
        reranker.train(ModelArguments(model_name_or_path=str(tiny_model_dir)))
