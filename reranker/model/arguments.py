"""Arguments shared by training and inference: which model to load and how pairs are encoded (flag names are the
reference's)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reranker.model.backbone import check_attention, check_score_head_name, decoder_settings
from reranker.model.heads import DECODER_FLAGS, check_preset, max_lengths
from reranker.model.pair_encoding import check_max_lengths
from reranker.model.prompt_template import check_pair_template, unescape_flag


def opt(default, help: str):
    """A dataclass field with a default and the help text HfArgumentParser shows."""
    return field(default=default, metadata={"help": help})


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Model directory or Hub name to start from or to score with."})
    config_name: str | None = opt(None, "Config to use instead of the model's own.")
    tokenizer_name: str | None = opt(None, "Tokenizer to use instead of the model's.")
    cache_dir: str | None = opt(None, "Where Hub downloads are cached.")
    model_revision: str | None = opt(None, "Hub revision (branch, tag or commit).")
    score_head: str | None = opt(
        None, "How the model scores a pair: cls (a linear head on [CLS]), segment_cosine (BERT: the cosine of the "
        "query's and the passage's mean states; starts as the bi-encoder the weights came from), last_token (a "
        "decoder LLM: a linear score on the last token's state, RankLLaMA) or yes_no (a causal LM: log P(yes) - "
        "log P(no), Qwen3-Reranker). Default: the checkpoint's own (cls for an encoder without one, last_token for a "
        "decoder sequence classifier).",
    )  # fmt: skip
    pair_template: str | None = opt(
        None, "Decoder heads: the pair's text with {query} and {text} (and optionally {title}), tokenized in one "
        "piece. "
        "Default: the checkpoint's; else 'query: {query} document: {text}' (last_token), Qwen3-Reranker's (yes_no).",
    )  # fmt: skip
    template_prefix: str | None = opt(None, "Decoder heads: text before the pair, tokenized on its own.")
    template_suffix: str | None = opt(
        None, "Decoder heads: text after the pair, tokenized on its own (last_token default: the EOS token)."
    )
    preset: str | None = opt(
        None, "A published LLM reranker's head, prompt and relevance tokens, as its model card's code sets them: "
        "qwen3-reranker, bge-reranker-v2-gemma or rankllama-v1.",
    )  # fmt: skip
    true_token: str | None = opt(
        None, "yes_no head: the token whose logit is the score (default: yes), a single token of the vocabulary."
    )
    false_token: str | None = opt(
        None, "yes_no head: the token whose logit is subtracted (default: no; with --true_token and no --false_token: "
        "the true token's logit alone).",
    )  # fmt: skip
    instruction: str | None = opt(
        None, "Decoder heads: the task instruction, in the pair template's {instruction} (yes_no default: "
        "Qwen3-Reranker's web-search one); a query's own `instruction` field (FlagEmbedding's `prompt`) overrides it. "
        "In the template flags and here, \\n and \\t stand for a line break and a tab.",
    )  # fmt: skip
    attn_implementation: str | None = opt(None, "Attention kernels: sdpa (default), flash_attention_2 or eager.")

    def __post_init__(self) -> None:
        for name in ("pair_template", "template_prefix", "template_suffix", "instruction"):
            setattr(self, name, unescape_flag(getattr(self, name)))
        check_score_head_name(self.score_head)
        check_preset(self.preset)
        check_attention(self.attn_implementation)
        if self.pair_template is not None:
            check_pair_template(self.pair_template)

    @property
    def template(self) -> dict[str, str | None]:
        """The decoder settings given (None: not given), as `resolve_score_head` takes them."""
        return decoder_settings(**{flag: getattr(self, flag) for flag in DECODER_FLAGS})


@dataclass
class EncodingArguments:
    q_max_len: int | None = opt(
        None, "Query tokens kept (before the pair's special tokens or the prompt). Default: 16 for encoders (the "
        "reference's), 64 for LLM heads (their prompt comes on top; --preset rankllama-v1: 32).",
    )  # fmt: skip
    p_max_len: int | None = opt(
        None, "Passage tokens kept (title + text). Default: 128 for encoders, 448 for LLM heads (rankllama-v1: 164)."
    )
    passage_field_separator: str = opt(" ", "Text between a passage's title and text.")

    def __post_init__(self) -> None:
        check_max_lengths(*max_lengths(self.q_max_len, self.p_max_len))
