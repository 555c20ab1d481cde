"""Decoder rerankers trained with LoRA: only adapters and the score layer move, the adapter folder reloads to the
same scores merged or not, --merge_lora writes the same model merged, gradient caching gives the big batch's
gradients, and an LLM reranker serves as the teacher of the teacher stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from reranker import Reranker, train
from reranker.cli.teacher_scores import main as teacher_main
from reranker.io.errors import ParameterError
from reranker.model.backbone import HEAD_RECORD, load_scoring_model, pair_encoder_for, resolve_score_head
from reranker.model.loading import load_tokenizer
from reranker.model.lora import add_lora
from reranker.training.collator import GroupedTrainCollator
from reranker.training.grad_cache import cached_gradient_step
from reranker.training.losses import RankingLoss, as_groups
from tests.training.test_grad_cache import GROUPS, gradients

PAIRS = [("what is a lobster roll", "A lobster roll is a sandwich of lobster meat."), ("lobster", "Bread."),
         ("who shot franz ferdinand", "Gavrilo Princip, in Sarajevo."), ("who shot him", "x y z")]  # fmt: skip


def lora_flags(model_dir, rows, output, score_head, **overrides) -> dict:
    """A 2-step LoRA run's flags (r 4, no LoRA dropout), `overrides` on top."""
    return {
        "output_dir": str(output), "model_name_or_path": str(model_dir), "dataset_name": str(rows),
        "score_head": score_head, "train_n_passages": 4, "q_max_len": 16, "p_max_len": 48,
        "per_device_train_batch_size": 2, "max_steps": 2, "learning_rate": 1e-2, "lora_r": 4, "lora_alpha": 8,
        "lora_dropout": 0.0, "save_strategy": "no", "report_to": "none", "disable_tqdm": True, "seed": 3,
        "logging_steps": 1, **overrides,
    }  # fmt: skip


def lora_run(model_dir, rows, output, score_head, **overrides):
    return train(**lora_flags(model_dir, rows, output, score_head, **overrides))


@pytest.mark.parametrize(("family", "score_head"), [("llama", "last_token"), ("qwen3", "yes_no")])
def test_lora_trains_adapters_and_head_only_and_reloads_to_the_same_scores(
    tiny_decoders, train_file, tmp_path, family, score_head
):
    base = tiny_decoders[family]
    out = lora_run(base, train_file, tmp_path / "adapter", score_head)
    assert {"adapter_config.json", "adapter_model.safetensors", HEAD_RECORD} <= {p.name for p in out.iterdir()}
    assert json.loads((out / HEAD_RECORD).read_text())["score_head"] == score_head
    saved = load_file(out / "adapter_model.safetensors")
    trained = {name.split(".")[-2] if "lora" in name else "score" for name in saved}
    assert trained == ({"lora_A", "lora_B", "score"} if score_head == "last_token" else {"lora_A", "lora_B"})
    assert all(tensor.abs().sum() > 0 for name, tensor in saved.items() if "lora_B" in name)  # B starts at 0

    tokenizer = load_tokenizer(str(out))
    head = resolve_score_head(str(out), tokenizer)  # the record says the head: no flag needed
    unmerged = load_scoring_model(str(out), head, merge_adapter=False)
    frozen = {name.replace("base_model.model.", "").replace(".base_layer", ""): tensor
              for name, tensor in unmerged.state_dict().items()
              if "lora_" not in name and "score" not in name}  # fmt: skip
    original = load_scoring_model(str(base), resolve_score_head(str(base), tokenizer, score_head)).state_dict()
    for name, tensor in frozen.items():
        torch.testing.assert_close(tensor, original[name], atol=0, rtol=0, msg=name)

    merged_scores = Reranker.from_pretrained(str(out)).predict(PAIRS)
    unmerged_scores = Reranker(unmerged, tokenizer, score_head=head).predict(PAIRS)
    np.testing.assert_allclose(merged_scores, unmerged_scores, atol=1e-5)
    untrained = Reranker.from_pretrained(str(base), score_head=score_head).predict(PAIRS)
    assert np.abs(merged_scores - untrained).max() > 1e-3  # training moved the scores


def test_merge_lora_writes_the_merged_model(tiny_decoders, train_file, tmp_path):
    adapter = lora_run(tiny_decoders["llama"], train_file, tmp_path / "adapter", "last_token")
    merged = lora_run(tiny_decoders["llama"], train_file, tmp_path / "merged", "last_token", merge_lora=True)
    names = {p.name for p in merged.iterdir()}
    assert "adapter_config.json" not in names and {"model.safetensors", "config.json", HEAD_RECORD} <= names
    assert json.loads((merged / "config.json").read_text())["architectures"] == ["LlamaForSequenceClassification"]
    np.testing.assert_allclose(Reranker.from_pretrained(str(merged)).predict(PAIRS),
                               Reranker.from_pretrained(str(adapter)).predict(PAIRS), atol=1e-5)  # fmt: skip


def test_lora_settings_are_checked_before_weights_are_read(tiny_decoders, tiny_model_dir, train_file, tmp_path):
    with pytest.raises(ParameterError, match="^merge_lora goes with lora_r > 0$"):
        train(output_dir=str(tmp_path / "o"), model_name_or_path=str(tiny_decoders["llama"]),
              dataset_name=str(train_file), merge_lora=True)  # fmt: skip
    with pytest.raises(ParameterError, match=r"^lora_target_modules nope: No modules were targeted for adaptation"):
        lora_run(tiny_decoders["llama"], train_file, tmp_path / "o2", "last_token", lora_target_modules="nope")
    with pytest.raises(ParameterError, match="^lora_r does not go with score_head segment_cosine"):
        lora_run(tiny_model_dir, train_file, tmp_path / "o3", "segment_cosine")


def test_gradient_caching_with_a_decoder_gives_the_big_batch_gradients(tiny_decoders):
    path = str(tiny_decoders["qwen3"])
    tokenizer = load_tokenizer(path)
    head = resolve_score_head(path, tokenizer, "last_token")
    model = add_lora(load_scoring_model(path, head), 4, 8, 0.0, ["q_proj", "v_proj"], "last_token").train()
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # B starts at 0, where the adapters' A get no gradient: start elsewhere
            torch.nn.init.normal_(parameter, std=0.1)
    encoder = pair_encoder_for(head, tokenizer, 16, 48)
    loss = RankingLoss.parse("lce,kl", "1,0.5", temperature=2.0)
    big = GroupedTrainCollator(encoder)(GROUPS)
    teacher = as_groups(big.pop("teacher_scores"), 8)
    expected = loss(as_groups(model(**big).logits, 8), teacher)
    expected.backward()
    expected_gradients = gradients(model)
    assert any("lora_A" in name for name in expected_gradients) and any("score" in n for n in expected_gradients)
    model.zero_grad()
    cached = GroupedTrainCollator(encoder, pairs_per_forward=5)(GROUPS)
    value = cached_gradient_step(model, cached["buckets"], cached["restore"],
                                 lambda logits: loss(as_groups(logits, 8), teacher))  # fmt: skip
    assert value.item() == pytest.approx(expected.item(), abs=1e-5)
    for name, grad in gradients(model).items():
        torch.testing.assert_close(grad, expected_gradients[name], atol=1e-5, rtol=1e-4, msg=name)


def test_an_llm_reranker_is_a_teacher(tiny_decoders, train_file, tmp_path):
    output = tmp_path / "scored.jsonl"
    path = str(tiny_decoders["qwen3"])
    assert teacher_main(["--teacher", path, "--score_head", "yes_no", "--input", str(train_file), "--output",
                         str(output), "--q_max_len", "16", "--p_max_len", "48"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    first = rows[0]
    passages = first["positive_passages"] + first["negative_passages"]
    expected = Reranker.from_pretrained(path, score_head="yes_no", q_max_len=16, p_max_len=48).predict(
        first["query"], [(p.get("title", ""), p["text"]) for p in passages]
    )
    np.testing.assert_allclose([p["score"] for p in passages], expected, atol=1e-5)


def test_a_killed_lora_run_resumes_to_the_same_adapter(tiny_decoders, train_file, tmp_path):
    from transformers import set_seed

    from reranker.api import _parse_training_flags
    from reranker.training.driver import build_trainer
    from tests.training.test_training import StopAtStep

    uninterrupted = lora_run(
        tiny_decoders["llama"],
        train_file,
        tmp_path / "a",
        "last_token",
        max_steps=4,
        save_strategy="steps",
        save_steps=2,
    )
    resumable = {"max_steps": 4, "save_strategy": "steps", "save_steps": 2}
    flags = lora_flags(tiny_decoders["llama"], train_file, tmp_path / "b", "last_token", **resumable)
    set_seed(3)  # as train() does: the adapters' and the score layer's random start
    trainer = build_trainer(*_parse_training_flags(flags))
    trainer.add_callback(StopAtStep(3))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert (tmp_path / "b" / "checkpoint-2" / HEAD_RECORD).is_file()  # every checkpoint can be scored
    resumed = train(**flags)  # the same command again: resumes from checkpoint-2
    a, b = (load_file(folder / "adapter_model.safetensors") for folder in (uninterrupted, resumed))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5, msg=name)
