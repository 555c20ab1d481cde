"""A `yes_no` reranker (Qwen3-Reranker-style causal LM) as a one-logit `...ForSequenceClassification`: the form
vLLM (`LLM(task="score")`), TEI and infinity serve, and sentence-transformers and plain transformers load as a
sequence classifier.

The score row is W[yes] - W[no] of the LM head: the classifier's logit on the last token's state is then
logit(yes) - logit(no), exactly the yes_no score (vLLM's `from_2_way_softmax` conversion). The prompt goes along
(the head record and the tokenizer's chat template), with a padding token that is not EOS.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from reranker.io.errors import ParameterError, literal
from reranker.model.backbone import (
    ScoreHead,
    decoder_settings,
    load_scoring_model,
    read_head_record,
    resolve_score_head,
    write_head_record,
)
from reranker.model.loading import RAW_LOGIT_ACTIVATION, load_tokenizer


def yes_no_as_sequence_classifier(model: PreTrainedModel, yes_no_token_ids: tuple[int, int | None]) -> PreTrainedModel:
    """A one-logit `...ForSequenceClassification` scoring as the `yes_no` causal LM `model` does.

    Args:
        model: a causal LM (fp32 weights give an exact copy).
        yes_no_token_ids: the ids of the true and false tokens (false None: the row is W[true] alone).

    Returns:
        The sequence classifier (the backbone's weights shared with nothing: copied).

    Example:
        >>> classifier = yes_no_as_sequence_classifier(causal_lm, (9693, 2152))
    """
    head = model.get_output_embeddings()
    name = type(model).__name__
    if getattr(head, "bias", None) is not None or getattr(model.config, "final_logit_softcapping", None):
        raise ParameterError(f"{{0}} seq_cls: {literal(name)} has an LM-head bias or soft-capped logits; the "
                             "difference of two logits is then no linear score", "to")  # fmt: skip
    config = copy.deepcopy(model.config)
    config.num_labels = 1
    config.architectures = [name.replace("ForCausalLM", "ForSequenceClassification")]
    classifier = AutoModelForSequenceClassification.from_config(config, dtype=head.weight.dtype)
    classifier.base_model.load_state_dict(model.base_model.state_dict())
    yes, no = yes_no_token_ids
    row = head.weight[yes].float() - (0 if no is None else head.weight[no].float())
    with torch.no_grad():
        classifier.score.weight.copy_(row[None])
    return classifier


def export_seq_cls(
    model_name_or_path: str, output_dir: str | os.PathLike, tokenizer_name: str | None = None, **flags: str | None
) -> Path:
    """Write the sequence-classifier export of a `yes_no` checkpoint (a folder, adapter folder or Hub name) to
    `output_dir` (created whole, or not at all); it records the `last_token` head and the same prompt.

    Args:
        model_name_or_path: the yes_no model.
        output_dir: a folder that does not exist yet (or is empty).
        tokenizer_name: its tokenizer, where the model folder has none.
        **flags: decoder settings (`preset`, `pair_template`, ..., `true_token`, `false_token`: `DECODER_FLAGS`)
            for a checkpoint that records none.

    Returns:
        The output folder.

    Example:
        >>> export_seq_cls("Qwen/Qwen3-Reranker-0.6B", "qwen3-reranker-seq-cls")
    """
    output = Path(output_dir)
    if output.exists() and any(output.iterdir()):
        raise ParameterError(f"{{0}} {literal(output)} exists and is not empty", "output_dir")
    tokenizer = load_tokenizer(tokenizer_name or model_name_or_path)
    recorded = read_head_record(model_name_or_path).get("score_head")
    head = resolve_score_head(model_name_or_path, tokenizer, None if recorded else "yes_no", decoder_settings(**flags))
    if head.name != "yes_no":
        raise ParameterError(f"{{0}} seq_cls converts a yes_no model, and {literal(model_name_or_path)} scores "
                             f"with {head.name}", "to")  # fmt: skip
    classifier = yes_no_as_sequence_classifier(load_scoring_model(model_name_or_path, head), head.yes_no_token_ids)
    classifier.config.sentence_transformers = RAW_LOGIT_ACTIVATION
    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        classifier.save_pretrained(work)
        tokenizer.save_pretrained(work)
        write_head_record(work, ScoreHead("last_token", True, head.template, pad_token_id=head.pad_token_id))
        if output.exists():
            output.rmdir()
        os.replace(work, output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return output
