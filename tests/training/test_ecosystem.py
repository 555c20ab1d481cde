"""Checkpoints, metrics, monitoring and packaging that researchers already use."""

import gzip
import importlib
import itertools
import json
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from reranker import train
from reranker.cli.plot import main as plot_main
from reranker.inference.scoring import PairScorer
from reranker.model.arguments import ModelArguments
from reranker.model.loading import load_cross_encoder, load_tokenizer
from reranker.model.pair_encoding import PairEncoder
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments
from reranker.training.curves import plot_curves, read_log_history
from tests.conftest import write_bm25_rerank_file

PAIRS = [("what is the capital of france", "Paris is the capital of France."),
         ("how many legs does a spider have", "Spiders have eight legs."),
         ("cat", "Dogs bark and cats purr.")]  # fmt: skip


def our_scores(model_dir):
    scorer = PairScorer(load_cross_encoder(str(model_dir)), PairEncoder(load_tokenizer(str(model_dir)), 16, 128),
                        torch.device("cpu"))  # fmt: skip
    return scorer.score_pairs([q for q, _ in PAIRS], [""] * len(PAIRS), [p for _, p in PAIRS])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, offline_data, tiny_model_dir):
    """A tiny model trained 6 steps, evaluated by reranking 5 dev600 queries every 2 steps, best kept."""
    root = tmp_path_factory.mktemp("trained")
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        (root / "train.jsonl").write_text("".join(itertools.islice(rows, 12)))
    write_bm25_rerank_file(offline_data, root / "eval.jsonl", 5)
    output = root / "model"
    train(
        ModelArguments(model_name_or_path=str(tiny_model_dir)),
        TrainDataArguments(dataset_name=str(root / "train.jsonl"), train_n_passages=4, p_max_len=64,
                           eval_rerank_file=str(root / "eval.jsonl"),
                           eval_qrels=str(offline_data / "dev600" / "qrels.txt")),
        RerankerTrainingArguments(output_dir=str(output), per_device_train_batch_size=4, max_steps=6,
                                  learning_rate=1e-3, logging_steps=1, eval_strategy="steps", eval_steps=2,
                                  save_steps=2, load_best_model_at_end=True, report_to="tensorboard",
                                  disable_tqdm=True, seed=3),
    )  # fmt: skip
    return output


@pytest.mark.slow
def test_evaluation_during_training_and_best_checkpoint(trained):
    history = read_log_history(trained)
    evaluations = [h for h in history if "eval_mrr_at_10" in h]
    assert [h["step"] for h in evaluations] == [2, 4, 6]
    assert all(0 <= h["eval_mrr_at_10"] <= 1 and 0 <= h["eval_ndcg_at_10"] <= 1 for h in evaluations)
    state = json.loads((trained / "trainer_state.json").read_text())
    best = max(evaluations, key=lambda h: h["eval_mrr_at_10"])
    assert state["best_metric"] == pytest.approx(best["eval_mrr_at_10"])
    assert state["best_model_checkpoint"].endswith(f"checkpoint-{best['step']}")
    final = AutoModelForSequenceClassification.from_pretrained(trained).state_dict()
    kept = AutoModelForSequenceClassification.from_pretrained(state["best_model_checkpoint"]).state_dict()
    assert all(torch.equal(final[name], kept[name]) for name in final)


@pytest.mark.slow
def test_model_card_summary_and_tensorboard(trained):
    card = (trained / "README.md").read_text()
    assert (
        "with the loss `lce` over groups" in card and "| MRR@10 | nDCG@10 |" in card and "steps / epochs | 6 /" in card
    )
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["stage"] == "train" and summary["steps"] == 6 and summary["queries"] == 12
    assert summary["versions"]["torch"] == torch.__version__ and "git_commit" in summary
    assert summary["arguments"]["learning_rate"] == 1e-3 and summary["groups_per_second"] > 0
    assert list(trained.glob("runs/*/events.out.tfevents.*")), "no TensorBoard event file"


@pytest.mark.slow
def test_sentence_transformers_loads_our_checkpoint_with_our_scores(trained):
    from sentence_transformers import CrossEncoder

    theirs = CrossEncoder(str(trained), device="cpu").predict(PAIRS, show_progress_bar=False)
    np.testing.assert_allclose(theirs, our_scores(trained), atol=1e-4)


def test_we_score_a_sentence_transformers_export(tiny_model_dir, tmp_path):
    from sentence_transformers import CrossEncoder

    exported = tmp_path / "st_export"
    CrossEncoder(str(tiny_model_dir), num_labels=1, device="cpu").save_pretrained(str(exported))
    theirs = CrossEncoder(str(exported), device="cpu", activation_fn=torch.nn.Identity())
    np.testing.assert_allclose(our_scores(exported), theirs.predict(PAIRS, show_progress_bar=False), atol=1e-4)


@pytest.mark.slow
def test_plot_draws_loss_and_metrics(trained, tmp_path):
    figure = plot_curves(read_log_history(trained), tmp_path / "curves.png")
    labels = [line.get_label() for axis in figure.axes for line in axis.get_lines()]
    assert labels == ["training loss", "MRR@10", "nDCG@10"]
    assert plot_main(["--run_dir", str(trained), "--output", str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "cli.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_commands_are_the_stage_scripts():
    commands = {ep.name: ep for ep in entry_points(group="console_scripts") if ep.name.startswith("reranker-")}
    expected = {
        "reranker-train": ("train_reranker", "reranker.cli.train"),
        "reranker-prepare": ("prepare_rerank_file", "reranker.cli.prepare"),
        "reranker-infer": ("reranker_inference", "reranker.cli.infer"),
        "reranker-convert": ("convert_result_to_marco", "reranker.cli.convert"),
        "reranker-validate": ("data_script", "reranker.cli.validate"),
    }
    for name, (script, module) in expected.items():
        assert commands[name].load() is importlib.import_module(module).main
        assert importlib.import_module(script).main is importlib.import_module(module).main
    assert {"reranker-eval", "reranker-bm25", "reranker-merge-scores", "reranker-plot"} <= set(commands)
    assert commands["reranker-export"].load() is importlib.import_module("reranker.cli.export").main
