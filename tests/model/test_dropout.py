"""`load_cross_encoder(..., dropout=p)`: every dropout probability of the model's config, and only with a valid p."""

import pytest
import torch
from transformers import BertConfig, DistilBertConfig, PretrainedConfig

from reranker.io.errors import ParameterError
from reranker.model.loading import load_cross_encoder, set_dropout


def two_training_passes(model, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    batch = tokenizer(["what is a reranker"] * 4, ["it orders the candidates of a first stage"] * 4,
                      return_tensors="pt")  # fmt: skip
    model.train()
    with torch.no_grad():
        return model(**batch).logits, model(**batch).logits


@pytest.mark.parametrize("score_head", [None, "segment_cosine"])
def test_dropout_zero_makes_training_passes_deterministic(tiny_model_dir, tokenizer, score_head):
    model = load_cross_encoder(str(tiny_model_dir), score_head=score_head, dropout=0.0)
    assert (model.config.hidden_dropout_prob, model.config.attention_probs_dropout_prob) == (0.0, 0.0)
    first, second = two_training_passes(model, tokenizer)
    assert torch.equal(first, second)
    # the checkpoint's own 0.1 draws new masks each pass
    first, second = two_training_passes(load_cross_encoder(str(tiny_model_dir), score_head=score_head), tokenizer)
    assert not torch.equal(first, second)


def test_every_dropout_probability_is_set_and_unset_ones_stay_unset():
    config = DistilBertConfig()
    set_dropout(config, 0.05, "distilbert")
    assert (config.dropout, config.attention_dropout, config.qa_dropout, config.seq_classif_dropout) == (0.05,) * 4
    config = BertConfig(classifier_dropout=None)  # None: the classifier uses hidden_dropout_prob
    set_dropout(config, 0.0, "bert")
    assert config.classifier_dropout is None and config.hidden_dropout_prob == 0.0


@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_a_probability_outside_0_1_is_refused(tiny_model_dir, value):
    with pytest.raises(ParameterError, match=rf"^dropout must be in \[0, 1\), got {value}$"):
        load_cross_encoder(str(tiny_model_dir), dropout=value)


def test_a_config_without_dropout_is_refused():
    with pytest.raises(ParameterError, match="^dropout: the config of m has no dropout probability to set$"):
        set_dropout(PretrainedConfig(), 0.0, "m")
