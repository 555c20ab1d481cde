"""Decoder score heads: a pair's score read at its last real token, found from the attention mask.

- `last_token` (RankLLaMA, Tevatron): the linear `score` of a `...ForSequenceClassification` model on the final
  state of the last real token. transformers' own forward finds that token as the last one that is not the pad
  id, which is wrong wherever the pad token is the EOS the template ends with (Qwen's, and any tokenizer given EOS
  as pad), so the forward here reads it from the attention mask.
- `yes_no` (Qwen3-Reranker): a causal LM's logit of "yes" minus its logit of "no" at the last real token, i.e.
  log P(yes) - log P(no); sigmoid(score) is the reference code's P(yes) of the softmax over (no, yes). The tokens
  are settings (`reranker.model.heads`); with no false token the score is the true token's logit alone
  (bge-reranker-v2-gemma). Only those rows of the LM head are computed (the full vocabulary's logits at every
  position would dwarf the model's memory at reranking batch sizes).

`right_padded=True` (a caller whose batches are right-padded, as `PairScorer`'s always are) runs the backbone without
the mask: causal attention alone, since no real token attends to the pads after it (SDPA's fused causal path, no
mask built, no host sync in transformers' mask code); the last real token is still found from the mask. Off by
default: a left-padded batch (transformers users pad decoders on the left) needs its mask.

Both compute the head in fp32 (bf16 scores tie, see `head_in_fp32`). A loaded model keeps its transformers class
and gets this forward by a subclass of the same name, so `save_pretrained` writes a checkpoint any transformers
code loads (`architectures` unchanged); peft wraps it as it wraps the original.
"""

from __future__ import annotations

import functools

import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from reranker.io.errors import ParameterError, literal


def last_token_states(states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The final state of each sequence's last real token: right padding, the mask's last 1 (no mask: the end).

    Example:
        >>> last_token_states(torch.arange(6.0).view(1, 3, 2), torch.tensor([[1, 1, 0]]))
        tensor([[2., 3.]])
    """
    if attention_mask is None:
        return states[:, -1]
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (positions * attention_mask.to(positions.dtype)).argmax(dim=1)
    return states[torch.arange(states.shape[0], device=states.device), last]


def _final_states(model: PreTrainedModel, input_ids, attention_mask, right_padded: bool, kwargs) -> torch.Tensor:
    backbone = getattr(model, model.base_model_prefix)
    extra = {name: kwargs[name] for name in ("position_ids", "inputs_embeds") if kwargs.get(name) is not None}
    # right padding: the causal mask alone keeps every real token from the pads, which come after it
    backbone_mask = None if right_padded else attention_mask
    states = backbone(input_ids=input_ids, attention_mask=backbone_mask, use_cache=False, **extra).last_hidden_state
    return last_token_states(states, attention_mask)


class LastTokenScoring:
    """The `last_token` forward, mixed into a `...ForSequenceClassification` class with a `score` layer
    (`right_padded`: see the module's docstring)."""

    def forward(
        self, input_ids=None, attention_mask=None, *, right_padded: bool = False, **kwargs
    ) -> SequenceClassifierOutput:
        last = _final_states(self, input_ids, attention_mask, right_padded, kwargs)
        with torch.autocast(last.device.type, enabled=False):
            return SequenceClassifierOutput(logits=self.score(last.float()).float())


class YesNoScoring:
    """The `yes_no` forward, mixed into a `...ForCausalLM` class; `yes_no_token_ids` is set on the instance
    (`right_padded`: see the module's docstring)."""

    yes_no_token_ids: tuple[int, int | None]

    def forward(
        self, input_ids=None, attention_mask=None, *, right_padded: bool = False, **kwargs
    ) -> SequenceClassifierOutput:
        last = _final_states(self, input_ids, attention_mask, right_padded, kwargs)
        with torch.autocast(last.device.type, enabled=False):
            return SequenceClassifierOutput(logits=self._yes_minus_no(last))

    def _token_rows(self, device: torch.device) -> torch.Tensor:
        """The tokens' rows of the LM head, kept on the device: a new tensor a batch is a pageable copy to the GPU,
        which waits for the queued work."""
        key = (self.yes_no_token_ids, device)
        if getattr(self, "_cached_rows", (None, None))[0] != key:
            ids = [i for i in self.yes_no_token_ids if i is not None]
            self._cached_rows = (key, torch.tensor(ids, device=device))  # a plain attribute, not a buffer
        return self._cached_rows[1]

    def _yes_minus_no(self, last: torch.Tensor) -> torch.Tensor:
        head = self.get_output_embeddings()
        rows = self._token_rows(last.device)
        logits = last.float() @ head.weight[rows].float().T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[rows].float()
        cap = getattr(self.config, "final_logit_softcapping", None)  # Gemma 2 caps its logits: so must we
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return (logits[:, 0] - logits[:, 1] if logits.shape[1] == 2 else logits[:, 0])[:, None]


@functools.cache
def _scoring_class(base: type, mixin: type) -> type:
    # the same name, so that save_pretrained records the original architecture
    return type(base.__name__, (mixin, base), {"__module__": base.__module__, "__qualname__": base.__qualname__})


def with_decoder_head(
    model: PreTrainedModel, score_head: str, yes_no_token_ids: tuple[int, int | None] | None = None
) -> PreTrainedModel:
    """`model` (loaded by transformers) scoring with `score_head`; its score layer kept in fp32.

    Args:
        model: a `...ForSequenceClassification` model with one label (`last_token`) or a `...ForCausalLM`
            (`yes_no`).
        score_head: "last_token" or "yes_no".
        yes_no_token_ids: the ids of the true and false tokens (`yes_no`; false None: the true token's logit).

    Returns:
        The same model object, its forward returning `logits` of shape (pairs, 1).
    """
    if score_head == "last_token":
        if not isinstance(getattr(model, "score", None), torch.nn.Linear):
            raise ParameterError(f"{{0}} last_token: {literal(type(model).__name__)} has no linear `score` layer",
                                 "score_head")  # fmt: skip
        model.score.float()
        model.__class__ = _scoring_class(type(model), LastTokenScoring)
    else:
        model.__class__ = _scoring_class(type(model), YesNoScoring)
        model.yes_no_token_ids = yes_no_token_ids
    return model
