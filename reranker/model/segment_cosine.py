"""A cross-encoder that starts out as the bi-encoder it is made from: the segment-cosine score head.

A cross-encoder made from a bi-encoder's weights (all-MiniLM-L6-v2, say) usually gets a new random head on its
[CLS] state and forgets, on a small training set, most of what the bi-encoder knew. This model reads the same pair
`[CLS] q [SEP] p [SEP]` in one joint pass, but laid out so that at the start it computes what the bi-encoder
computed, and training learns how far to move from there:
- each segment keeps the positions it would have on its own (the passage's start at 1, [CLS] holding 0) and all
  tokens get segment type 0, as the bi-encoder saw them;
- attention from one segment to the other carries an additive bias, one per layer and head, trained with the rest,
  starting at `cross_attention_bias` (-4 weighs each crossing pair e^-4 = 0.018 times as much as before), except
  attention to [CLS], which every token sees: it is the attention sink the passage had in its own encoding
  (without it, the zero-shot scores are those of another model: dev600 MRR@10 0.385 instead of 0.526);
- the score is the cosine of the mean of the query segment's final states ([CLS] q [SEP]) and the mean of the
  passage segment's (p [SEP]): the bi-encoder's mean pooling and cosine, times a logit scale.

The logit scale (learned unless fixed; CLIP's start, 1/0.07, for a model made from a bi-encoder) is what lets
every loss work on the head: a cosine alone lies in [-1, 1], where lce, bce and ranknet can never be satisfied
(lce over a group of 8 cannot go below 0.666 even with perfect cosines) and push every cosine towards +-1. It is
separate from the kl loss's temperature: kl divides the scaled score by T again. Checkpoints written before the
scale existed load with a fixed scale of 1 (their scores were raw cosines).

With the bias at -inf it is exactly that bi-encoder (up to the passage reading the query's [CLS] instead of its
own), so it distils from it without a gap to make up. BERT-type models only (segment ids mark the segments).
Saved folders load with `AutoModelForSequenceClassification` once this module is imported (`import reranker`
does), also in sentence-transformers' CrossEncoder.
"""

from __future__ import annotations

import math

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    BertPreTrainedModel,
    PretrainedConfig,
)
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput

from reranker.io.errors import ParameterError, literal

CLIP_LOGIT_SCALE = 1 / 0.07  # CLIP's starting scale (Radford et al., 2021): cosines spread over +-14.3 logits
MAX_LOGIT_SCALE = 100.0  # CLIP's clamp, so that a learned scale cannot blow the logits up


class SegmentCosineConfig(BertConfig):
    """A BERT config with where the segment-cosine head's cross-segment attention bias and logit scale start, and
    whether the scale is learned. The defaults (scale 1, fixed) are those of checkpoints from before the scale."""

    model_type = "bert-segment-cosine"

    def __init__(
        self, cross_attention_bias: float = -4.0, logit_scale: float = 1.0, learn_logit_scale: bool = False, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.cross_attention_bias = cross_attention_bias
        self.logit_scale = logit_scale
        self.learn_logit_scale = learn_logit_scale


class BertForSegmentCosine(BertPreTrainedModel):
    """BERT scoring a pair by the cosine of its two segments' mean states (see the module docstring).

    Takes the inputs of a BERT sequence classifier (`token_type_ids` required: they mark the segments) and returns
    `logits` of shape (pairs, 1).

    Example:
        >>> model = load_cross_encoder("sentence-transformers/all-MiniLM-L6-v2", score_head="segment_cosine")
        >>> model(**tokenizer("a query", "a passage", return_tensors="pt")).logits  # shape (1, 1): a cosine
    """

    config_class = SegmentCosineConfig

    def __init__(self, config: SegmentCosineConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        shape = (config.num_hidden_layers, config.num_attention_heads)
        self.cross_bias = torch.nn.Parameter(torch.full(shape, float(config.cross_attention_bias)))
        # the log of the scale, as CLIP learns it: the scale stays positive and moves by ratios
        self.log_logit_scale = torch.nn.Parameter(torch.tensor(math.log(config.logit_scale)))
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        super()._init_weights(module)
        if module is self:  # neither is in a bi-encoder's checkpoint: they start at the configured values
            # transformers' init functions leave alone what the checkpoint loaded (one of the two may be missing)
            init.constant_(self.cross_bias, self.config.cross_attention_bias)
            init.constant_(self.log_logit_scale, math.log(self.config.logit_scale))

    @property
    def logit_scale(self) -> torch.Tensor:
        """The factor the cosine is multiplied by (at most `MAX_LOGIT_SCALE`); without a gradient when the config
        fixes it (detached rather than `requires_grad=False`, which loading a checkpoint would reset)."""
        log_scale = self.log_logit_scale if self.config.learn_logit_scale else self.log_logit_scale.detach()
        return log_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        cosine = torch.nn.functional.cosine_similarity(*self.segment_means(input_ids, token_type_ids, attention_mask))
        return SequenceClassifierOutput(logits=(self.logit_scale.float() * cosine)[:, None])

    def segment_means(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean final state (fp32) of each pair's query segment ([CLS] q [SEP]) and of its passage (p [SEP])."""
        if token_type_ids is None:
            raise ValueError("BertForSegmentCosine needs token_type_ids: they mark the query and the passage")
        query, passage, positions = segment_layout(token_type_ids, attention_mask)
        states = self.bert.embeddings(
            input_ids=input_ids, token_type_ids=torch.zeros_like(token_type_ids), position_ids=positions
        )
        device = states.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else states.dtype
        crossing = passage[:, :, None] != passage[:, None, :]
        crossing[:, :, 0] = False  # every token sees [CLS]
        crossing = crossing.to(dtype)[:, None]
        padding = torch.zeros(query.shape, dtype=dtype, device=states.device)
        padding = padding.masked_fill(~(query | passage), torch.finfo(dtype).min)[:, None, None, :]
        for layer, bias in zip(self.bert.encoder.layer, self.cross_bias, strict=True):
            states = layer(states, padding + crossing * bias.to(dtype).view(1, -1, 1, 1))
        states = states.float()
        return tuple((states * part[..., None]).sum(1) / part.sum(1, keepdim=True) for part in (query, passage))


def segment_layout(
    token_type_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(query tokens, passage tokens, position ids) of a batch of pairs `[CLS] q [SEP] p [SEP]` (right-padded):
    the passage's positions start again at 1, as if it followed its own [CLS]; padding keeps its positions.

    Example:
        >>> segment_layout(torch.tensor([[0, 0, 0, 1, 1, 0]]), torch.tensor([[1, 1, 1, 1, 1, 0]]))[2]
        tensor([[0, 1, 2, 1, 2, 5]])
    """
    real = torch.ones_like(token_type_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    passage = token_type_ids.bool() & real
    query = ~passage & real
    positions = torch.arange(token_type_ids.shape[1], device=token_type_ids.device).expand_as(token_type_ids)
    positions = torch.where(passage, positions - query.sum(1, keepdim=True) + 1, positions)
    return query, passage, positions


AutoConfig.register(SegmentCosineConfig.model_type, SegmentCosineConfig)
AutoModelForSequenceClassification.register(SegmentCosineConfig, BertForSegmentCosine)


def segment_cosine_config(
    config: PretrainedConfig,
    name: str,
    cross_attention_bias: float | None = None,
    logit_scale: float | None = None,
    fixed_logit_scale: bool = False,
) -> SegmentCosineConfig:
    """`config` (a BERT model's) as a SegmentCosineConfig whose bias starts at `cross_attention_bias` (default -4)
    and whose logit scale starts at `logit_scale` (default `CLIP_LOGIT_SCALE`), learned unless `fixed_logit_scale`.
    A config that is one already keeps its learned bias and scale; `fixed_logit_scale` then stops the scale's
    learning."""
    if logit_scale is not None and not 0 < logit_scale <= MAX_LOGIT_SCALE:
        raise ParameterError(f"{{0}} must be in (0, {MAX_LOGIT_SCALE:g}], got {logit_scale}", "logit_scale")
    if isinstance(config, SegmentCosineConfig):
        for flag, value in (("cross_attention_bias", cross_attention_bias), ("logit_scale", logit_scale)):
            if value is not None:
                raise ParameterError(f"{{0}}: {literal(name)} has learned it already; give no starting value", flag)
        if fixed_logit_scale:
            config.learn_logit_scale = False
        return config
    if config.model_type != "bert":
        raise ParameterError(
            f"{{0}} segment_cosine needs a BERT-type model, and {literal(name)} is {literal(config.model_type)}",
            "score_head",
        )
    settings = config.to_dict()
    for key in ("model_type", "architectures", "num_labels", "id2label", "label2id"):
        settings.pop(key, None)
    start = {} if cross_attention_bias is None else {"cross_attention_bias": cross_attention_bias}
    return SegmentCosineConfig(
        **settings, **start, logit_scale=CLIP_LOGIT_SCALE if logit_scale is None else logit_scale,
        learn_logit_scale=not fixed_logit_scale, num_labels=1, architectures=[BertForSegmentCosine.__name__],
    )  # fmt: skip
