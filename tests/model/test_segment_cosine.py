"""The segment-cosine head: the layout of a pair, the bi-encoder it starts as, saving and loading, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from reranker import Reranker
from reranker.io.errors import ParameterError
from reranker.model.loading import load_cross_encoder
from reranker.model.pair_encoding import PairEncoder
from reranker.model.segment_cosine import CLIP_LOGIT_SCALE, BertForSegmentCosine, segment_layout
from reranker.training.losses import RankingLoss

PAIRS = [("how long is a marathon", "The marathon is a race of 42.195 km, run on roads."),
         ("how long is a marathon", "Marathon is a town in Attica, Greece."),
         ("capital of france", "Paris is the capital and largest city of France."),
         ("capital of france", "Lyon is a city in France known for its cuisine and its silk.")]  # fmt: skip


def batch(tokenizer, pairs, q_max_len=16, p_max_len=128):
    encoded = PairEncoder(tokenizer, q_max_len, p_max_len).encode(
        [q for q, _ in pairs], [""] * len(pairs), [p for _, p in pairs]
    )
    return encoded.padded_batch(np.arange(len(pairs)), int(encoded.lengths.max()), tokenizer.pad_token_id)


def test_layout_restarts_the_passage_positions_after_the_query():
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]])
    query, passage, positions = segment_layout(types, mask)
    assert query.int().tolist() == [[1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0]]
    assert passage.int().tolist() == [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0, 0]]
    assert positions.tolist() == [[0, 1, 2, 3, 1, 2, 3], [0, 1, 2, 1, 2, 5, 6]]
    assert torch.equal(segment_layout(types[:1])[2], positions[:1])  # no mask: every token is real


@pytest.fixture(scope="module")
def minilm_segment_cosine(minilm_path):
    return load_cross_encoder(minilm_path, score_head="segment_cosine").eval()


@pytest.mark.slow
def test_it_starts_as_the_bi_encoder(minilm_segment_cosine, minilm_path, tokenizer):
    """With attention across the segments shut, the query segment is encoded exactly as the bi-encoder encodes the
    query alone; the passage differs only in reading the query's [CLS]. At the default bias the scores stay close
    to the bi-encoder's cosines."""
    from sentence_transformers import SentenceTransformer

    bi_encoder = SentenceTransformer(minilm_path, device="cpu")
    queries = bi_encoder.encode([q for q, _ in PAIRS], convert_to_tensor=True)
    passages = bi_encoder.encode([p for _, p in PAIRS], convert_to_tensor=True)
    teacher = torch.nn.functional.cosine_similarity(queries, passages)
    model, inputs = minilm_segment_cosine, batch(tokenizer, PAIRS)
    assert model.cross_bias.shape == (6, 12) and torch.all(model.cross_bias == -4.0)
    assert model.logit_scale.item() == pytest.approx(CLIP_LOGIT_SCALE) and model.config.learn_logit_scale
    with torch.no_grad():
        scores = model(**inputs).logits[:, 0] / model.logit_scale
        model.cross_bias.fill_(-1e4)
        query_means, passage_means = model.segment_means(**inputs)
        closed = model(**inputs).logits[:, 0] / model.logit_scale
        model.cross_bias.fill_(-4.0)
    normalized = torch.nn.functional.normalize(query_means)  # the bi-encoder's last module normalizes
    torch.testing.assert_close(normalized, queries, atol=1e-5, rtol=1e-4)
    assert torch.nn.functional.cosine_similarity(passage_means, passages).min() > 0.99
    assert (closed - teacher).abs().max() < 0.02 and (scores - teacher).abs().max() < 0.05
    assert scores.argsort().tolist() == teacher.argsort().tolist() == closed.argsort().tolist()


def test_a_pair_scores_the_same_alone_and_padded_in_a_batch(tiny_segment_cosine, tokenizer):
    model = load_cross_encoder(str(tiny_segment_cosine)).eval()
    with torch.no_grad():
        together = model(**batch(tokenizer, PAIRS)).logits[:, 0]
        alone = torch.cat([model(**batch(tokenizer, [pair])).logits[:, 0] for pair in PAIRS])
    assert "attention_mask" in batch(tokenizer, PAIRS)  # the pairs differ in length: some are padded
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_the_segments_read_each_other_only_through_the_bias(tiny_segment_cosine, tokenizer):
    model = load_cross_encoder(str(tiny_segment_cosine)).eval()
    first, second = batch(tokenizer, PAIRS[:1]), batch(tokenizer, [(PAIRS[0][0], PAIRS[1][1])])
    with torch.no_grad():
        model.cross_bias.fill_(-1e4)
        shut = [model.segment_means(**inputs)[0] for inputs in (first, second)]
        model.cross_bias.fill_(0.0)
        open_ = [model.segment_means(**inputs)[0] for inputs in (first, second)]
    torch.testing.assert_close(shut[0], shut[1], atol=1e-6, rtol=0)  # the query's states ignore the passage
    assert (open_[0] - open_[1]).abs().max() > 1e-3


@pytest.fixture(scope="module")
def tiny_segment_cosine(tmp_path_factory, tiny_model_dir, tokenizer):
    """The tiny random BERT with a segment-cosine head, its cross bias at -2, saved."""
    folder = tmp_path_factory.mktemp("tiny_segment_cosine")
    model = load_cross_encoder(str(tiny_model_dir), score_head="segment_cosine")
    with torch.no_grad():
        model.cross_bias.copy_(torch.linspace(-3, -1, model.cross_bias.numel()).view_as(model.cross_bias))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_bias_starts_where_asked(tiny_model_dir):
    model = load_cross_encoder(str(tiny_model_dir), score_head="segment_cosine", cross_attention_bias=-2.5)
    assert model.config.cross_attention_bias == -2.5 and model.cross_bias.flatten().tolist() == [-2.5] * 4


def test_it_saves_and_loads_as_itself(tiny_segment_cosine, tokenizer):
    config = json.loads((tiny_segment_cosine / "config.json").read_text())
    assert config["model_type"] == "bert-segment-cosine" and config["architectures"] == ["BertForSegmentCosine"]
    model = load_cross_encoder(str(tiny_segment_cosine))
    assert isinstance(model, BertForSegmentCosine)
    assert model.cross_bias.flatten().tolist() == pytest.approx(np.linspace(-3, -1, 4).tolist())
    again = load_cross_encoder(str(tiny_segment_cosine), score_head="segment_cosine")
    assert torch.equal(again.cross_bias, model.cross_bias)


def test_the_engine_and_sentence_transformers_give_the_same_scores(tiny_segment_cosine):
    from sentence_transformers import CrossEncoder

    ours = Reranker.from_pretrained(str(tiny_segment_cosine)).predict(PAIRS)
    bf16 = Reranker.from_pretrained(str(tiny_segment_cosine), precision="bf16").predict(PAIRS)
    theirs = CrossEncoder(str(tiny_segment_cosine), device="cpu", activation_fn=torch.nn.Identity()).predict(PAIRS)
    np.testing.assert_allclose(ours, theirs, atol=1e-5 * CLIP_LOGIT_SCALE)
    np.testing.assert_allclose(bf16, ours, atol=0.05 * CLIP_LOGIT_SCALE)
    assert ours.dtype == np.float32 and np.all(np.abs(ours) <= CLIP_LOGIT_SCALE + 1e-4)


def test_score_head_refusals(tiny_model_dir, tiny_segment_cosine, tmp_path):
    with pytest.raises(ParameterError, match="^score_head must be one of cls, segment_cosine, got 'mean'$"):
        load_cross_encoder(str(tiny_model_dir), score_head="mean")
    with pytest.raises(ParameterError, match="^score_head cls: .* scores with a segment-cosine head, not a"):
        load_cross_encoder(str(tiny_segment_cosine), score_head="cls")
    with pytest.raises(ParameterError, match="^cross_attention_bias goes with score_head segment_cosine$"):
        load_cross_encoder(str(tiny_model_dir), cross_attention_bias=-2.0)
    with pytest.raises(ParameterError, match="^cross_attention_bias: .* has learned it already; give no starting"):
        load_cross_encoder(str(tiny_segment_cosine), score_head="segment_cosine", cross_attention_bias=-2.0)
    with pytest.raises(ParameterError, match="^logit_scale: .* has learned it already; give no starting value$"):
        load_cross_encoder(str(tiny_segment_cosine), score_head="segment_cosine", logit_scale=10.0)
    for flags in ({"logit_scale": 10.0}, {"fixed_logit_scale": True}):
        with pytest.raises(ParameterError, match=f"^{next(iter(flags))} goes with score_head segment_cosine$"):
            load_cross_encoder(str(tiny_model_dir), **flags)
    for bad in (0.0, -1.0, 101.0):
        with pytest.raises(ParameterError, match=rf"^logit_scale must be in \(0, 100\], got {bad}$"):
            load_cross_encoder(str(tiny_model_dir), score_head="segment_cosine", logit_scale=bad)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    with pytest.raises(ParameterError, match="^score_head segment_cosine needs a BERT-type model, and .* is roberta"):
        load_cross_encoder(str(tmp_path), score_head="segment_cosine")


def test_the_logit_scale_multiplies_the_cosine_and_is_learned_unless_fixed(tiny_model_dir, tokenizer):
    inputs = batch(tokenizer, PAIRS)
    learned = load_cross_encoder(str(tiny_model_dir), score_head="segment_cosine", logit_scale=5.0).eval()
    fixed = load_cross_encoder(str(tiny_model_dir), score_head="segment_cosine", logit_scale=5.0,
                               fixed_logit_scale=True).eval()  # fmt: skip
    with torch.no_grad():
        cosine = torch.nn.functional.cosine_similarity(*learned.segment_means(**inputs))
        torch.testing.assert_close(learned(**inputs).logits[:, 0], 5.0 * cosine)
    assert learned.config.learn_logit_scale and not fixed.config.learn_logit_scale
    for model in (learned, fixed):
        RankingLoss.parse("lce", None)(model(**inputs).logits.view(1, 4), None).backward()
    assert learned.log_logit_scale.grad.item() != 0 and fixed.log_logit_scale.grad is None
    assert fixed.cross_bias.grad is not None  # the rest of the model learns


def test_lce_can_be_satisfied_only_with_a_scale():
    """Perfect cosines (the positive at 1, seven negatives at -1): lce cannot go below 0.666 on raw cosines, and
    is near 0 once they are scaled as the head scales them by default."""
    cosines = torch.tensor([[1.0] + [-1.0] * 7])
    lce = RankingLoss.parse("lce", None)
    assert lce(cosines, None).item() == pytest.approx(np.log(1 + 7 * np.exp(-2.0)), abs=1e-6)  # 0.6657
    assert lce(CLIP_LOGIT_SCALE * cosines, None).item() < 1e-11


def test_a_checkpoint_from_before_the_scale_scores_raw_cosines(tiny_segment_cosine, tokenizer, tmp_path):
    """Its config has no logit_scale and its weights no log_logit_scale: it loads with a fixed scale of 1."""
    from safetensors.torch import load_file, save_file

    config = json.loads((tiny_segment_cosine / "config.json").read_text())
    for key in ("logit_scale", "learn_logit_scale"):
        config.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(config))
    weights = load_file(tiny_segment_cosine / "model.safetensors")
    save_file({k: v for k, v in weights.items() if k != "log_logit_scale"}, tmp_path / "model.safetensors")
    old, new = load_cross_encoder(str(tmp_path)).eval(), load_cross_encoder(str(tiny_segment_cosine)).eval()
    assert old.logit_scale.item() == 1.0 and not old.config.learn_logit_scale
    inputs = batch(tokenizer, PAIRS)
    with torch.no_grad():
        torch.testing.assert_close(old(**inputs).logits * new.logit_scale, new(**inputs).logits)


def test_a_start_that_is_not_a_mean_pooling_bi_encoder_is_warned_about(tiny_model_dir, minilm_path, caplog):
    def ours():
        return [record for record in caplog.records if record.name == "reranker.model.loading"]

    with caplog.at_level("WARNING", logger="reranker.model.loading"):
        load_cross_encoder(minilm_path, score_head="segment_cosine")
        assert not ours()
        load_cross_encoder(str(tiny_model_dir), score_head="segment_cosine")
    (record,) = ours()
    assert "is not a sentence-transformers bi-encoder with mean pooling (no sentence-transformers Pooling" in (
        record.getMessage()
    )
