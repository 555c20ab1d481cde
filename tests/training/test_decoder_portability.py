"""Decoder checkpoints written here score the same outside the package: a tiny Qwen3 (yes_no) and a tiny Llama
without a padding token (last_token), trained 2 LoRA steps and merged, scored by plain transformers and by
sentence-transformers' `CrossEncoder(folder)` with no arguments, padded together and one by one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from reranker import Reranker
from reranker.io.rerank_input import iter_query_blocks
from tests.conftest import write_bm25_rerank_file
from tests.training.test_decoder_training import lora_run

LONG = {"q_max_len": 64, "p_max_len": 1024}  # nothing is cut: the outside tools do not cut as we do


@pytest.fixture(scope="module")
def dev_pairs(tmp_path_factory, offline_data) -> list[tuple[str, str]]:
    """20 real dev600 pairs: the BM25 top 5 of the first 4 queries."""
    path = write_bm25_rerank_file(offline_data, tmp_path_factory.mktemp("dev") / "dev20.jsonl", 4, depth=5)
    pairs = [(c.query, c.text) for block in iter_query_blocks(path) for c in block.candidates]
    assert len(pairs) == 20
    return pairs


@pytest.fixture(scope="module")
def merged(tiny_decoders, train_file, tmp_path_factory) -> dict:
    """Each family trained 2 LoRA steps and merged."""
    root = tmp_path_factory.mktemp("merged")
    return {head: lora_run(tiny_decoders[family], train_file, root / head, head, merge_lora=True)
            for family, head in (("llama", "last_token"), ("qwen3", "yes_no"))}  # fmt: skip


def messages(pair: tuple[str, str]) -> list[dict]:
    return [{"role": "query", "content": pair[0]}, {"role": "document", "content": pair[1]}]


def transformers_scores(folder, pairs, head: str, batch: bool) -> np.ndarray:
    """Plain transformers on the prompt the checkpoint's chat template writes: a sequence classifier's logit
    (last_token), or logit(yes) - logit(no) of the causal LM at the last token (yes_no, the model card's way)."""
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left" if head == "yes_no" else "right")
    auto = AutoModelForCausalLM if head == "yes_no" else AutoModelForSequenceClassification
    model = auto.from_pretrained(folder).eval()
    yes, no = tokenizer.convert_tokens_to_ids(["yes", "no"])
    scores = []
    for part in [pairs] if batch else [[pair] for pair in pairs]:
        inputs = tokenizer.apply_chat_template([messages(pair) for pair in part], tokenize=True, padding=True,
                                               return_dict=True, return_tensors="pt")  # fmt: skip
        with torch.no_grad():
            logits = model(**inputs).logits
        scores += (logits[:, -1, yes] - logits[:, -1, no] if head == "yes_no" else logits[:, 0]).tolist()
    return np.array(scores)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["last_token", "yes_no"])
def test_merged_checkpoints_score_the_same_in_transformers_and_sentence_transformers(merged, dev_pairs, head):
    from sentence_transformers import CrossEncoder

    folder = str(merged[head])
    ours = Reranker.from_pretrained(folder, **LONG).predict(dev_pairs)
    assert np.ptp(ours) > 1e-3  # the pairs score differently: the comparisons can fail
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = json.loads((merged[head] / "config.json").read_text())
    assert tokenizer.pad_token != tokenizer.eos_token and config["pad_token_id"] == tokenizer.pad_token_id
    for batch in (True, False):
        np.testing.assert_allclose(transformers_scores(folder, dev_pairs, head, batch), ours, atol=1e-4)
    cross_encoder = CrossEncoder(folder, device="cpu")
    for batch_size in (20, 1):
        theirs = cross_encoder.predict(dev_pairs, batch_size=batch_size, show_progress_bar=False)
        np.testing.assert_allclose(theirs, ours, atol=1e-4)
    if head == "yes_no":  # CrossEncoder's prompt= is the task instruction
        task = "Given a claim, find passages that support it"
        theirs = cross_encoder.predict(dev_pairs, prompt=task, show_progress_bar=False)
        instructed = Reranker.from_pretrained(folder, **LONG).predict(dev_pairs, instruction=task)
        np.testing.assert_allclose(theirs, instructed, atol=1e-4)
        assert np.abs(theirs - ours).max() > 1e-4


@pytest.mark.slow
def test_every_checkpoint_and_the_adapter_record_the_padding(tiny_decoders, train_file, tmp_path, dev_pairs):
    """A Llama tokenizer has no padding token: every checkpoint-N and the adapter folder get UNK, and the adapter
    scores the same in plain transformers given that id (an adapter folder has no config.json of its own)."""
    out = lora_run(tiny_decoders["llama"], train_file, tmp_path / "a", "last_token", save_strategy="steps",
                   save_steps=1)  # fmt: skip
    for folder in (out, out / "checkpoint-1", out / "checkpoint-2"):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert (tokenizer.pad_token, tokenizer.eos_token) == ("<unk>", "</s>")
        assert "<Query>" not in tokenizer.chat_template and "document: " in tokenizer.chat_template
    ours = Reranker.from_pretrained(str(out), **LONG).predict(dev_pairs[:6])
    model = AutoModelForSequenceClassification.from_pretrained(out, pad_token_id=tokenizer.pad_token_id).eval()
    inputs = tokenizer.apply_chat_template([messages(pair) for pair in dev_pairs[:6]], tokenize=True, padding=True,
                                           return_dict=True, return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        np.testing.assert_allclose(model(**inputs).logits[:, 0].numpy(), ours, atol=1e-4)


@pytest.mark.slow
def test_the_seq_cls_export_scores_logit_yes_minus_logit_no(merged, dev_pairs, tmp_path, capsys):
    from sentence_transformers import CrossEncoder

    from reranker.cli.export import main as export_main

    yes_no = str(merged["yes_no"])
    out = tmp_path / "seq-cls"
    assert export_main(["--to", "seq_cls", "--model_name_or_path", yes_no, "--output_dir", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForSequenceClassification"] and len(config["id2label"]) == 1
    ours = Reranker.from_pretrained(yes_no, **LONG).predict(dev_pairs)  # logit(yes) - logit(no)
    for batch in (True, False):
        np.testing.assert_allclose(transformers_scores(str(out), dev_pairs, "last_token", batch), ours, atol=1e-5)
    np.testing.assert_allclose(Reranker.from_pretrained(str(out), **LONG).predict(dev_pairs), ours, atol=1e-5)
    theirs = CrossEncoder(str(out), device="cpu").predict(dev_pairs, show_progress_bar=False)
    np.testing.assert_allclose(theirs, ours, atol=1e-4)

    capsys.readouterr()
    bad = tmp_path / "bad"
    argv = ["--to", "seq_cls", "--model_name_or_path", str(merged["last_token"]), "--output_dir", str(bad)]
    assert export_main(argv) == 2 and not bad.exists()
    assert capsys.readouterr().err == (f"error: --to seq_cls converts a yes_no model, and {merged['last_token']} "
                                       "scores with last_token\n")  # fmt: skip
    assert export_main(["--to", "seq_cls", "--model_name_or_path", yes_no, "--output_dir", str(out)]) == 2
    assert capsys.readouterr().err == f"error: --output_dir {out} exists and is not empty\n"


@pytest.mark.slow
def test_a_fully_fine_tuned_checkpoint_records_the_padding_too(tiny_decoders, train_file, tmp_path, dev_pairs):
    from sentence_transformers import CrossEncoder

    out = lora_run(tiny_decoders["llama"], train_file, tmp_path / "full", "last_token", lora_r=0,
                   save_strategy="steps", save_steps=2)  # fmt: skip
    for folder in (out, out / "checkpoint-2"):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert json.loads((folder / "config.json").read_text())["pad_token_id"] == tokenizer.pad_token_id
        assert tokenizer.pad_token == "<unk>"
    ours = Reranker.from_pretrained(str(out), **LONG).predict(dev_pairs[:6])
    theirs = CrossEncoder(str(out), device="cpu").predict(dev_pairs[:6], show_progress_bar=False)
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
