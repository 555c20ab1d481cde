"""The one place that decides, for a checkpoint, its backbone (BERT-style encoder or decoder LLM), its score head
and how a pair is laid out (BERT's `[CLS] q [SEP] p [SEP]`, or a decoder's prompt template), and loads it so.

Training, inference, the teacher stage and the Python API all go through `resolve_score_head` (before any
weights are read: bad settings fail fast), `load_scoring_model` and `pair_encoder_for`.

A decoder checkpoint written here records its head and template in `reranker_head.json` (also in an adapter
folder); a checkpoint that records none (Qwen3-Reranker is a plain causal LM) takes them from the flags:
`score_head` "yes_no" (Qwen3-Reranker's prompt by default) or "last_token" (RankLLaMA's); a
`...ForSequenceClassification` decoder defaults to last_token.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

from reranker.io.errors import ParameterError, literal
from reranker.model.decoder_heads import with_decoder_head
from reranker.model.heads import (
    DECODER_HEADS,
    DECODER_LENGTHS,
    ENCODER_LENGTHS,
    PRESETS,
    YES_NO_TOKENS,
    Preset,
    check_preset,
    check_score_head,
    default_template,
    relevance_token_ids,
)
from reranker.model.loading import load_cross_encoder, model_file
from reranker.model.lora import ADAPTER_CONFIG, adapter_base, load_adapter
from reranker.model.padding import set_decoder_padding
from reranker.model.pair_encoding import GroupEncoder, PairEncoder
from reranker.model.prompt_template import (
    PromptEncoder,
    PromptTemplate,
)

HEAD_RECORD = "reranker_head.json"
ATTENTION_IMPLEMENTATIONS = ("sdpa", "flash_attention_2", "eager")
# a decoder's prompt parts and the flags that give them (the other decoder settings are named as their flags:
# preset, true_token, false_token)
PROMPT_FLAGS = {"prefix": "template_prefix", "pair": "pair_template", "suffix": "template_suffix",
                "instruction": "instruction"}  # fmt: skip


@dataclass(frozen=True)
class ScoreHead:
    """How a checkpoint scores a pair.

    `name`: "cls", "segment_cosine", "last_token", "yes_no", or None (an encoder's own head). `template`: a
    decoder's prompt. `yes_no_token_ids`: (true, false or None) token ids of a yes_no head; `tokens`: those tokens.
    `adapter_of`: the base model when the checkpoint is a LoRA adapter folder. `decoder`: the backbone is a decoder
    LLM. `config`: the backbone's config. `pad_token_id`: a decoder's padding id (not its EOS), written into the
    config of every checkpoint. `lengths`: the default (q_max_len, p_max_len) (`heads.max_lengths`).
    """

    name: str | None
    decoder: bool = False
    template: PromptTemplate | None = None
    yes_no_token_ids: tuple[int, int | None] | None = None
    adapter_of: str | None = None
    config: PretrainedConfig | None = None
    pad_token_id: int | None = None
    tokens: tuple[str, str | None] | None = None
    lengths: tuple[int, int] = ENCODER_LENGTHS

    def record(self) -> dict:
        """What `reranker_head.json` holds."""
        record = {"score_head": self.name, "template": self.template.to_dict() if self.template else None}
        return {**record, "tokens": list(self.tokens)} if self.tokens else record


def is_decoder_config(config: PretrainedConfig) -> bool:
    """A decoder LLM (Llama, Mistral, Qwen, Gemma, ...): transformers has a causal LM of its type and no masked LM
    (BERT-style encoders have both)."""
    return config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and config.model_type not in (
        MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def decoder_settings(**flags: str | None) -> dict[str, str | None]:
    """The `template` argument of `resolve_score_head` from decoder flags named as `heads.DECODER_FLAGS` are.

    Example:
        >>> decoder_settings(pair_template="{query} {text}", preset=None)
        {'pair': '{query} {text}', 'preset': None}
    """
    parts = {flag: part for part, flag in PROMPT_FLAGS.items()}
    return {parts.get(flag, flag): value for flag, value in flags.items()}


def check_score_head_name(score_head: str | None) -> None:
    """ParameterError unless `score_head` is None or one of every backbone's heads."""
    check_score_head(score_head)


def read_head_record(name_or_path: str) -> dict:
    """The `reranker_head.json` of a checkpoint ({} when it has none)."""
    path = model_file(name_or_path, HEAD_RECORD)
    return json.loads(path.read_text()) if path else {}


def write_head_record(folder: str | Path, head: ScoreHead) -> None:
    """Record a decoder head and its template in `folder` (nothing for an encoder: its config says it all)."""
    if head.decoder:
        (Path(folder) / HEAD_RECORD).write_text(json.dumps(head.record(), indent=2) + "\n")


def resolve_score_head(
    name_or_path: str,
    tokenizer: PreTrainedTokenizerBase,
    score_head: str | None = None,
    template: dict[str, str | None] | None = None,
    config_name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
) -> ScoreHead:
    """Decide backbone, head and template of `name_or_path` from its config, its record and the settings given,
    reading no weights. A decoder's tokenizer gets a padding token that is not its EOS (`decoder_pad_token`) and
    the prompt as its chat template (`PromptTemplate.chat_template`), so the checkpoints written with it score the
    same in plain transformers and sentence-transformers.

    Args:
        name_or_path: model folder, adapter folder or Hub name.
        tokenizer: its tokenizer.
        score_head: asked-for head (None: the checkpoint's own).
        template: decoder settings given: prompt parts ("prefix", "pair", "suffix", "instruction"), "preset",
            "true_token", "false_token" (None values: the checkpoint's, the preset's or the head's default).

    Returns:
        The `ScoreHead`. Settings that cannot work are a ParameterError naming the setting.

    Example:
        >>> resolve_score_head("Qwen/Qwen3-Reranker-0.6B", tokenizer, "yes_no").template.suffix[:10]
        '<|im_end|>'
    """
    check_score_head_name(score_head)
    settings = {key: value for key, value in (template or {}).items() if value is not None}
    check_preset(settings.get("preset"))
    base = adapter_base(name_or_path, model_file(name_or_path, ADAPTER_CONFIG))
    config = AutoConfig.from_pretrained(config_name or base or name_or_path, cache_dir=cache_dir, revision=revision)
    if not is_decoder_config(config):
        _refuse_decoder_settings(score_head, settings, name_or_path, config)
        return ScoreHead(score_head, adapter_of=base, config=config)
    record = read_head_record(name_or_path)
    preset = PRESETS.get(settings.get("preset"))
    if preset and score_head not in (None, preset.head):
        raise ParameterError(f"{{0}} {score_head} does not go with {{1}} {settings['preset']} (a {preset.head} "
                             "model)", "score_head", "preset")  # fmt: skip
    name = (
        score_head
        or (preset and preset.head)
        or record.get("score_head")
        or _default_decoder_head(config, name_or_path)
    )
    if name not in DECODER_HEADS:
        raise ParameterError(f"{{0}} {name}: {literal(name_or_path)} is a decoder LLM ({literal(config.model_type)}); "
                             "use last_token or yes_no", "score_head")  # fmt: skip
    given = {part: settings[part] for part in PROMPT_FLAGS if part in settings}
    recorded = record if record.get("score_head") == name else {}
    parts = {**(preset.template(tokenizer) if preset else recorded.get("template")
                or default_template(name, tokenizer, name_or_path, given)), **given}  # fmt: skip
    if "instruction" not in given and "{instruction}" not in parts["pair"]:
        parts["instruction"] = None  # a pair template given without a place for the default instruction
    template = PromptTemplate(**parts)
    tokens = _relevance_tokens(name, settings, preset, recorded)
    ids = relevance_token_ids(tokenizer, tokens, name_or_path) if tokens else None
    set_decoder_padding(tokenizer, name_or_path)
    tokenizer.chat_template = template.chat_template()
    lengths = preset.lengths if preset else DECODER_LENGTHS
    return ScoreHead(name, True, template, ids, base, config, tokenizer.pad_token_id, tokens, lengths)


def _refuse_decoder_settings(score_head: str | None, settings: dict, name: str, config: PretrainedConfig) -> None:
    """ParameterError for a decoder-only setting on an encoder."""
    if score_head in DECODER_HEADS:
        raise ParameterError(f"{{0}} {score_head} needs a decoder LLM, and {literal(name)} is "
                             f"{literal(config.model_type)}", "score_head")  # fmt: skip
    if "preset" in settings:
        raise ParameterError(f"{{0}} {settings['preset']} needs a decoder LLM, and {literal(name)} is "
                             f"{literal(config.model_type)}", "preset")  # fmt: skip
    if settings:
        first = min(settings)
        raise ParameterError("{0} goes with the decoder heads (last_token, yes_no)", PROMPT_FLAGS.get(first, first))


def _relevance_tokens(
    name: str, settings: dict, preset: Preset | None, recorded: dict
) -> tuple[str, str | None] | None:
    """A yes_no head's (true, false) tokens: the flags' (no --false_token: the true token's logit alone), else
    the preset's, the checkpoint's record, Qwen3-Reranker's yes/no."""
    flags = [flag for flag in ("true_token", "false_token") if flag in settings]
    if name != "yes_no":
        if flags:
            raise ParameterError("{0} goes with {1} yes_no", flags[0], "score_head")
        return None
    if flags:
        if "true_token" not in settings:
            raise ParameterError("{0} needs {1} (the token whose logit the score adds)", "false_token", "true_token")
        return settings["true_token"], settings.get("false_token")
    if preset:
        return preset.tokens
    return tuple(recorded["tokens"]) if recorded.get("tokens") else YES_NO_TOKENS


def _default_decoder_head(config: PretrainedConfig, name: str) -> str:
    if any(arch.endswith("ForSequenceClassification") for arch in config.architectures or []):
        return "last_token"
    raise ParameterError(
        f"{{0}}: {literal(name)} is a causal LM that records no score head; give {{0}} yes_no (a "
        "Qwen3-Reranker-style model, scored zero-shot) or last_token (a new linear head, to train)", "score_head",
    )  # fmt: skip


def pair_encoder_for(
    head: ScoreHead, tokenizer: PreTrainedTokenizerBase, q_max_len: int, p_max_len: int, separator: str = " "
) -> GroupEncoder:
    """The encoder that lays pairs out for `head`: BERT's pair template or the decoder's prompt."""
    if head.decoder:
        return PromptEncoder(tokenizer, head.template, q_max_len, p_max_len, separator)
    return PairEncoder(tokenizer, q_max_len, p_max_len, separator)


def load_scoring_model(
    name_or_path: str,
    head: ScoreHead,
    config_name: str | None = None,
    cache_dir: str | None = None,
    revision: str | None = None,
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
    merge_adapter: bool = True,
    **encoder_settings,
) -> torch.nn.Module:
    """Load the model `head` describes: an encoder through `load_cross_encoder` (`encoder_settings`: its dropout,
    segment-cosine settings), a decoder with its head in fp32 and its other weights in `dtype` (default fp32), an
    adapter folder on its base model (loaded once; merged unless `merge_adapter` is False).

    Example:
        >>> model = load_scoring_model("Qwen/Qwen3-Reranker-0.6B", head, dtype=torch.bfloat16)
    """
    check_attention(attn_implementation)
    source = head.adapter_of or name_or_path
    if head.decoder:
        model = _load_decoder(source, head, cache_dir, revision, dtype, attn_implementation, encoder_settings)
    else:
        model = load_cross_encoder(source, config_name, cache_dir, revision, score_head=head.name,
                                   attn_implementation=attn_implementation or "sdpa", **encoder_settings)  # fmt: skip
    return load_adapter(model, name_or_path, merge_adapter) if head.adapter_of else model


def check_attention(attn_implementation: str | None) -> None:
    if attn_implementation is not None and attn_implementation not in ATTENTION_IMPLEMENTATIONS:
        raise ParameterError(f"{{0}} must be one of {', '.join(ATTENTION_IMPLEMENTATIONS)}, got "
                             f"{literal(repr(attn_implementation))}", "attn_implementation")  # fmt: skip


def _load_decoder(source, head, cache_dir, revision, dtype, attn_implementation, settings):
    unsupported = sorted(name for name, value in settings.items() if value is not None and value is not False)
    if unsupported:
        raise ParameterError(f"{{0}} does not go with {{1}} {head.name}", unsupported[0], "score_head")
    auto = AutoModelForCausalLM if head.name == "yes_no" else AutoModelForSequenceClassification
    config = copy.deepcopy(head.config)  # read by resolve_score_head (config_name's, or the source's)
    if head.name == "last_token":
        config.num_labels = 1
    config.pad_token_id = head.pad_token_id  # transformers' own forward finds the last token by it
    model = auto.from_pretrained(
        source, config=config, cache_dir=cache_dir, revision=revision, dtype=dtype or torch.float32,
        attn_implementation=attn_implementation or "sdpa",
    )  # fmt: skip
    return with_decoder_head(model, head.name, head.yes_no_token_ids)
