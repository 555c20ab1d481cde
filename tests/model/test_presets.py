"""Presets of published LLM rerankers build, for a pair, the token ids their model cards' code builds (written out
here from each card), relevance tokens are settings checked at start-up, and bad settings are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from reranker import Reranker
from reranker.cli.infer import main as infer_main
from reranker.model.backbone import pair_encoder_for, resolve_score_head
from reranker.model.heads import BGE_GEMMA_PROMPT
from reranker.model.loading import load_tokenizer
from tests.model.test_decoder_rerankers import PAIRS, assert_parameter_errors, qwen3_reranker_reference

QUERY, PASSAGE = PAIRS[0]


def preset_ids(path: str, preset: str, title: str = "") -> tuple[list[int], tuple]:
    tokenizer = load_tokenizer(path)
    head = resolve_score_head(path, tokenizer, None, {"preset": preset})
    return pair_encoder_for(head, tokenizer, 64, 256).encode([QUERY], [title], [PASSAGE])[0][0], head


def test_qwen3_reranker_preset_is_the_model_card(tiny_decoders):
    path = str(tiny_decoders["qwen3"])
    ids, head = preset_ids(path, "qwen3-reranker")
    reference_ids, _ = qwen3_reranker_reference(path, [(QUERY, PASSAGE)])
    assert ids == reference_ids[0]
    tokenizer = load_tokenizer(path)
    assert head.name == "yes_no" and head.yes_no_token_ids == tuple(tokenizer.convert_tokens_to_ids(["yes", "no"]))


def test_bge_reranker_v2_gemma_preset_is_the_model_card(tiny_decoders):
    """BAAI/bge-reranker-v2-gemma's `get_inputs` (a pair needing no cutting) and its score, logit('Yes') alone; the
    tiny Llama stands in for Gemma (a BOS-adding tokenizer)."""
    path = str(tiny_decoders["llama"])
    tokenizer = load_tokenizer(path)
    prompt_inputs = tokenizer(BGE_GEMMA_PROMPT, return_tensors=None, add_special_tokens=False)["input_ids"]
    sep_inputs = tokenizer("\n", return_tensors=None, add_special_tokens=False)["input_ids"]
    query_inputs = tokenizer(f"A: {QUERY}", return_tensors=None, add_special_tokens=False)["input_ids"]
    passage_inputs = tokenizer(f"B: {PASSAGE}", return_tensors=None, add_special_tokens=False)["input_ids"]
    expected = [tokenizer.bos_token_id] + query_inputs + sep_inputs + passage_inputs + sep_inputs + prompt_inputs
    ids, head = preset_ids(path, "bge-reranker-v2-gemma")
    assert ids == expected
    yes_loc = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    assert head.name == "yes_no" and head.yes_no_token_ids == (yes_loc, None)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():
        reference = model(input_ids=torch.tensor([expected])).logits[0, -1, yes_loc].item()
    score = Reranker.from_pretrained(path, preset="bge-reranker-v2-gemma", q_max_len=64, p_max_len=256).predict(
        [(QUERY, PASSAGE)]
    )[0]
    assert score == pytest.approx(reference, abs=1e-5)


def test_rankllama_v1_preset_is_the_model_card(tiny_decoders):
    """castorini/rankllama-v1-7b-lora-passage: `tokenizer(f'query: {query}', f'document: {title} {passage}')`,
    i.e. BOS query BOS document, no EOS; scored by the last_token head."""
    path = str(tiny_decoders["llama"])
    tokenizer = load_tokenizer(path)
    expected = tokenizer(f"query: {QUERY}", f"document: Lobster {PASSAGE}")["input_ids"]
    ids, head = preset_ids(path, "rankllama-v1", title="Lobster")
    assert ids == expected and expected.count(tokenizer.bos_token_id) == 2 and tokenizer.eos_token_id not in ids
    assert head.name == "last_token" and head.yes_no_token_ids is None


def test_a_true_token_alone_scores_its_logit(tiny_decoders):
    path = str(tiny_decoders["qwen3"])
    tokenizer = load_tokenizer(path)
    alone = Reranker.from_pretrained(path, score_head="yes_no", true_token="Yes").predict(PAIRS)
    both = Reranker.from_pretrained(path, score_head="yes_no", true_token="Yes", false_token="No").predict(PAIRS)
    encoder = Reranker.from_pretrained(path, score_head="yes_no").scorer.encoder
    ids = encoder.encode([q for q, _ in PAIRS], [""] * 4, [p for _, p in PAIRS])
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    yes, no = tokenizer.convert_tokens_to_ids(["Yes", "No"])
    with torch.no_grad():
        logits = np.array([model(input_ids=torch.tensor([ids[i][0]])).logits[0, -1].numpy() for i in range(4)])
    np.testing.assert_allclose(alone, logits[:, yes], atol=1e-5)
    np.testing.assert_allclose(both, logits[:, yes] - logits[:, no], atol=1e-5)


def test_bad_presets_and_tokens_are_one_line_errors(tiny_decoders, tiny_model_dir, tokenizer):
    qwen, bert = str(tiny_decoders["qwen3"]), str(tiny_model_dir)
    qwen_tokenizer = load_tokenizer(qwen)
    cases = [
        (lambda: resolve_score_head(bert, tokenizer, None, {"preset": "qwen3-reranker"}),
         r"^preset qwen3-reranker needs a decoder LLM, and .* is bert$"),
        (lambda: resolve_score_head(bert, tokenizer, None, {"true_token": "yes"}),
         r"^true_token goes with the decoder heads"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, None, {"preset": "qwen4"}),
         r"^preset must be one of qwen3-reranker, bge-reranker-v2-gemma, rankllama-v1, got 'qwen4'$"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "last_token", {"preset": "qwen3-reranker"}),
         r"^score_head last_token does not go with preset qwen3-reranker \(a yes_no model\)$"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "yes_no", {"true_token": "yes please"}),
         r"^true_token 'yes please' is not a single token of the vocabulary of .*qwen3$"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "last_token", {"true_token": "yes"}),
         r"^true_token goes with score_head yes_no$"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "yes_no", {"false_token": "no"}),
         r"^false_token needs true_token"),
    ]  # fmt: skip
    assert_parameter_errors(cases)


def test_a_bad_token_stops_the_command_before_any_output(tiny_decoders, tmp_path, capsys):
    rerank = tmp_path / "in.jsonl"
    rerank.write_text('{"query_id": "q", "query": "a", "docid": "d", "text": "b"}\n')
    out = tmp_path / "scores.txt"
    argv = ["--model_name_or_path", str(tiny_decoders["qwen3"]), "--score_head", "yes_no", "--true_token", "maybe so",
            "--encode_in_path", str(rerank), "--encoded_save_path", str(out)]  # fmt: skip
    assert infer_main(argv) == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --true_token 'maybe so' is not a single token")


def test_llm_heads_default_to_longer_lengths(tiny_decoders, tiny_model_dir):
    decoder = Reranker.from_pretrained(str(tiny_decoders["qwen3"]), preset="qwen3-reranker").scorer.encoder
    encoder = Reranker.from_pretrained(str(tiny_model_dir)).scorer.encoder
    given = Reranker.from_pretrained(str(tiny_decoders["qwen3"]), score_head="yes_no", p_max_len=32).scorer.encoder
    rankllama = Reranker.from_pretrained(str(tiny_decoders["llama"]), preset="rankllama-v1").scorer.encoder
    lengths = [(e.q_max_len, e.p_max_len) for e in (decoder, encoder, given, rankllama)]
    assert lengths == [(64, 448), (16, 128), (64, 32), (32, 164)]


def test_the_seq_cls_export_of_a_single_token_preset_scores_that_logit(tiny_decoders, tmp_path):
    from reranker.cli.export import main as export_main

    path, out = str(tiny_decoders["llama"]), tmp_path / "bge-seq-cls"
    argv = [
        "--to",
        "seq_cls",
        "--model_name_or_path",
        path,
        "--output_dir",
        str(out),
        "--preset",
        "bge-reranker-v2-gemma",
    ]
    assert export_main(argv) == 0
    expected = Reranker.from_pretrained(path, preset="bge-reranker-v2-gemma").predict(PAIRS)  # logit("Yes")
    np.testing.assert_allclose(Reranker.from_pretrained(str(out)).predict(PAIRS), expected, atol=1e-5)
