"""Decoder LLM rerankers: the yes_no head scores exactly as Qwen3-Reranker's reference code, the last_token head as
a direct computation from the model's states, and bad settings fail in one line before any weights are read."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerFast,
)

from reranker import Reranker
from reranker.io.errors import ParameterError
from reranker.model.backbone import load_scoring_model, resolve_score_head
from reranker.model.decoder_heads import last_token_states
from reranker.model.loading import load_tokenizer
from reranker.model.padding import decoder_pad_token
from reranker.model.prompt_template import (
    QWEN3_RERANKER_INSTRUCTION,
    QWEN3_RERANKER_PREFIX,
    QWEN3_RERANKER_SUFFIX,
    PromptTemplate,
)

PAIRS = [("what is a lobster roll", "A lobster roll is a sandwich of lobster meat on a grilled bun."),
         ("what is a lobster roll", "Lobsters live on the sea floor."),
         ("who shot franz ferdinand", "Gavrilo Princip shot the Archduke in Sarajevo in 1914, which started a war "
                                      "that lasted four years."),
         ("who shot franz ferdinand", "x")]  # fmt: skip


def qwen3_reranker_reference(path, pairs) -> tuple[list[list[int]], np.ndarray]:
    """The Qwen3-Reranker model card's code: (token ids, P(yes)) of each pair."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    prefix = tokenizer.encode(QWEN3_RERANKER_PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(QWEN3_RERANKER_SUFFIX, add_special_tokens=False)
    texts = [f"<Instruct>: {QWEN3_RERANKER_INSTRUCTION}\n<Query>: {q}\n<Document>: {d}" for q, d in pairs]
    inputs = tokenizer(texts, padding=False, truncation="longest_first", return_attention_mask=False,
                       max_length=8192 - len(prefix) - len(suffix))  # fmt: skip
    inputs["input_ids"] = [prefix + ids + suffix for ids in inputs["input_ids"]]
    batch = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=8192)
    with torch.no_grad():
        logits = model(**batch).logits[:, -1, :]
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    probabilities = torch.log_softmax(torch.stack([logits[:, no], logits[:, yes]], dim=1), dim=1)[:, 1].exp()
    return inputs["input_ids"], probabilities.numpy()


def test_yes_no_scores_as_the_qwen3_reranker_reference(tiny_decoders):
    path = str(tiny_decoders["qwen3"])
    reranker = Reranker.from_pretrained(path, score_head="yes_no", q_max_len=32, p_max_len=128)
    encoded = reranker.scorer.encoder.encode([q for q, _ in PAIRS], [""] * len(PAIRS), [p for _, p in PAIRS])
    reference_ids, p_yes = qwen3_reranker_reference(path, PAIRS)
    assert [encoded[i][0] for i in range(len(PAIRS))] == reference_ids
    scores = reranker.predict(PAIRS)
    np.testing.assert_allclose(1 / (1 + np.exp(-scores.astype(np.float64))), p_yes, atol=1e-6)
    assert np.ptp(scores) > 1e-4  # the pairs score differently: the comparison can fail
    rows = reranker.scorer.model._token_rows(torch.device("cpu"))
    assert rows.tolist() == list(reranker.scorer.model.yes_no_token_ids)
    np.testing.assert_array_equal(reranker.predict(PAIRS), scores)
    assert reranker.scorer.model._token_rows(torch.device("cpu")) is rows  # kept on the device, not rebuilt a batch


def test_last_token_scores_the_last_real_token_of_padded_batches(tiny_decoders):
    """Scored together (padded, with a mask), each pair gets what the model gives it alone (no padding at all)."""
    path = str(tiny_decoders["llama"])
    reranker = Reranker.from_pretrained(path, score_head="last_token", pad_to_multiple_of=64, batch_size=4)
    scores = reranker.predict(PAIRS)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
    model.score.load_state_dict(reranker.scorer.model.score.state_dict())  # the same random head
    encoder = reranker.scorer.encoder
    for (query, passage), score in zip(PAIRS, scores, strict=True):
        ids = encoder.encode([query], [""], [passage])[0][0]
        assert ids[0] == encoder.tokenizer.bos_token_id and ids[-1] == encoder.tokenizer.eos_token_id
        with torch.no_grad():
            states = model.model(input_ids=torch.tensor([ids])).last_hidden_state
            alone = model.score(states[:, -1]).item()
        assert score == pytest.approx(alone, abs=1e-5)
    assert reranker.scorer.encoder.tokenizer.pad_token == "<unk>"  # Llama's tokenizer has none: UNK pads


def test_last_token_states_reads_the_mask():
    states = torch.arange(12.0).view(2, 3, 2)
    picked = last_token_states(states, torch.tensor([[1, 1, 0], [1, 1, 1]]))
    assert picked.tolist() == [[2.0, 3.0], [10.0, 11.0]]


def test_queries_and_passages_are_cut_before_the_template(tiny_decoders):
    tokenizer = load_tokenizer(str(tiny_decoders["qwen3"]))
    head = resolve_score_head(str(tiny_decoders["qwen3"]), tokenizer, "last_token")
    assert head.template == PromptTemplate("", "query: {query} document: {text}", "<|im_end|>")
    from reranker.model.backbone import pair_encoder_for

    encoder = pair_encoder_for(head, tokenizer, 2, 3)
    long_query, long_passage = "lobster roll sandwich recipe", "a lobster roll is a sandwich of lobster meat"
    ids = encoder.encode([long_query], [""], [long_passage])[0][0]
    q_cut = tokenizer.decode(tokenizer(long_query, add_special_tokens=False)["input_ids"][:2])
    p_cut = tokenizer.decode(tokenizer(long_passage, add_special_tokens=False)["input_ids"][:3])
    expected = tokenizer(f"query: {q_cut} document: {p_cut}", add_special_tokens=False)["input_ids"]
    assert ids == expected + [tokenizer.eos_token_id]
    assert len(ids) <= encoder.longest_pair


def test_a_title_placeholder_takes_the_title(tiny_decoders):
    tokenizer = load_tokenizer(str(tiny_decoders["qwen3"]))
    template = {"pair": "Q {query} T {title} D {text}", "prefix": None, "suffix": "!"}
    head = resolve_score_head(str(tiny_decoders["qwen3"]), tokenizer, "last_token", template)
    from reranker.model.backbone import pair_encoder_for

    ids = pair_encoder_for(head, tokenizer, 8, 8).encode(["q"], ["the title"], ["the text"])[0][0]
    assert tokenizer.decode(ids) == "Q q T the title D the text!"


def word_tokenizer(words: list[str], eos: str | None = None, unk: str | None = "<unk>") -> PreTrainedTokenizerFast:
    model = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token=unk or words[0]))
    return PreTrainedTokenizerFast(tokenizer_object=model, unk_token=unk, eos_token=eos)


def assert_parameter_errors(cases) -> None:
    """Each (call, message regex): the call raises a ParameterError whose one line matches."""
    for call, message in cases:
        with pytest.raises(ParameterError, match=message):
            call()


def test_bad_decoder_settings_are_one_line_errors(tiny_decoders, tiny_model_dir, tokenizer):
    qwen, bert = str(tiny_decoders["qwen3"]), str(tiny_model_dir)
    qwen_tokenizer = load_tokenizer(qwen)
    cases = [
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "last_token", {"pair": "{query} only"}),
         r"^pair_template '\{query\} only': no \{text\} placeholder; it needs \{query\} and \{text\}"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "last_token", {"pair": "{query} {text} {doc}"}),
         r"^pair_template .*: unknown placeholder \{doc\}"),
        (lambda: resolve_score_head(qwen, word_tokenizer(["<unk>", "yes", "</s>"], "</s>"), "yes_no"),
         r"^false_token 'no' is not a single token of the vocabulary of .*qwen3$"),
        (lambda: resolve_score_head(qwen, word_tokenizer(["<unk>", "a"]), "last_token"),
         r"^score_head last_token: the tokenizer of .* has no EOS token to end a pair with; give template_suffix$"),
        (lambda: resolve_score_head(qwen, word_tokenizer(["a", "b"], unk=None), "last_token", {"suffix": "b"}),
         r"^tokenizer .* has neither a padding nor an EOS token$"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer),
         r"^score_head: .* is a causal LM that records no score head; give score_head yes_no"),
        (lambda: resolve_score_head(qwen, qwen_tokenizer, "cls"),
         r"^score_head cls: .* is a decoder LLM \(qwen3\); use last_token or yes_no$"),
        (lambda: resolve_score_head(bert, tokenizer, "yes_no"),
         r"^score_head yes_no needs a decoder LLM, and .* bert$"),
        (lambda: resolve_score_head(bert, tokenizer, None, {"pair": "{query} {text}"}),
         r"^pair_template goes with the decoder heads"),
        (lambda: load_scoring_model(qwen, resolve_score_head(qwen, qwen_tokenizer, "yes_no"), dropout=0.0),
         r"^dropout does not go with score_head yes_no$"),
    ]  # fmt: skip
    assert_parameter_errors(cases)


def test_bf16_asks_for_bf16_weights_and_an_fp32_head(tiny_decoders, monkeypatch):
    import reranker.api

    monkeypatch.setattr(reranker.api, "autocast_dtype", lambda precision, device: torch.bfloat16)
    reranker_ = Reranker.from_pretrained(str(tiny_decoders["llama"]), score_head="last_token", precision="bf16")
    model = reranker_.scorer.model
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16
    assert model.score.weight.dtype == torch.float32
    assert reranker_.predict(PAIRS[:2]).dtype == np.float32


def test_the_padding_token_is_never_eos():
    """Its own padding token if not EOS, else UNK (Llama 2), else a special token named for padding or reserved
    (Llama 3, Qwen 2.5 base), else none (the caller falls back to EOS with a warning)."""
    assert decoder_pad_token(word_tokenizer(["<unk>", "</s>"], "</s>")) == "<unk>"
    own = word_tokenizer(["<unk>", "</s>", "<pad>"], "</s>")
    own.pad_token = "<pad>"
    assert decoder_pad_token(own) == "<pad>"
    reserved = word_tokenizer(["x", "</s>", "<|reserved_special_token_0|>"], "</s>", unk=None)
    reserved.add_special_tokens({"additional_special_tokens": ["<|reserved_special_token_0|>"]})
    reserved.pad_token = "</s>"
    assert decoder_pad_token(reserved) == "<|reserved_special_token_0|>"
    assert decoder_pad_token(word_tokenizer(["x", "</s>"], "</s>", unk=None)) is None
