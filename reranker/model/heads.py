"""The registry of score heads, their default prompts and relevance tokens, and the presets of published LLM
rerankers: every stage reads heads, templates, tokens and presets from here.

Heads: `cls` and `segment_cosine` (encoders), `last_token` and `yes_no` (decoder LLMs; `yes_no` reads the logit of
a true token minus that of a false token, or the true token's alone when there is no false one).

Presets set head, prompt and tokens as each model card's code does:
- `qwen3-reranker` (Qwen/Qwen3-Reranker-*): logit("yes") - logit("no") after its chat prompt and instruction;
- `bge-reranker-v2-gemma` (BAAI, FlagEmbedding's LLM reranker): `<bos>A: {query}\\nB: {passage}\\n{prompt}`, the
  logit of "Yes" alone;
- `rankllama-v1` (castorini/rankllama-v1-7b-lora-passage, Tevatron): the tokenizer's pair of `query: {query}` and
  `document: {title} {passage}`, i.e. `<s>query: ...<s>document: ...` with no EOS, a linear score on the last token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from reranker.io.errors import ParameterError, literal
from reranker.model.prompt_template import (
    LAST_TOKEN_PAIR,
    QWEN3_RERANKER_INSTRUCTION,
    QWEN3_RERANKER_PAIR,
    QWEN3_RERANKER_PREFIX,
    QWEN3_RERANKER_SUFFIX,
    leading_special_text,
)

ENCODER_HEADS = ("cls", "segment_cosine")
DECODER_HEADS = ("last_token", "yes_no")
SCORE_HEADS = ENCODER_HEADS + DECODER_HEADS
# a decoder's settings, as `Reranker.from_pretrained` and every stage's flags name them
DECODER_FLAGS = ("preset", "pair_template", "template_prefix", "template_suffix", "instruction", "true_token",
                 "false_token")  # fmt: skip
YES_NO_TOKENS = ("yes", "no")  # Qwen3-Reranker's, and sentence-transformers' LogitScore default
# FlagEmbedding's LLM reranker prompt (BAAI/bge-reranker-v2-gemma model card, `get_inputs`)
BGE_GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing a "
    "prediction of either 'Yes' or 'No'."
)


# Query and passage tokens kept when not given: the reference recipe's for encoders (BERT's 512 positions hold a
# pair); more for LLM heads, whose prompts come on top and whose contexts hold thousands of tokens (16 query
# tokens would cut a question short)
ENCODER_LENGTHS = (16, 128)
DECODER_LENGTHS = (64, 448)


def max_lengths(
    q_max_len: int | None, p_max_len: int | None, defaults: tuple[int, int] = ENCODER_LENGTHS
) -> tuple[int, int]:
    """(q_max_len, p_max_len): the given ones, else `defaults` (a head's `ScoreHead.lengths`; the encoders' ones,
    the smallest, where the head is not known yet).

    Example:
        >>> max_lengths(None, 256, DECODER_LENGTHS)
        (64, 256)
    """
    return defaults[0] if q_max_len is None else q_max_len, defaults[1] if p_max_len is None else p_max_len


@dataclass(frozen=True)
class Preset:
    """A published reranker's head, prompt (`template(tokenizer)`: prefix, pair, suffix, instruction), relevance
    tokens (true, false or None) and default query and passage lengths."""

    head: str
    tokens: tuple[str, str | None] | None
    template: Callable[[PreTrainedTokenizerBase], dict[str, str | None]]
    lengths: tuple[int, int] = DECODER_LENGTHS


def _qwen3_reranker(tokenizer: PreTrainedTokenizerBase) -> dict[str, str | None]:
    return {"prefix": QWEN3_RERANKER_PREFIX, "pair": QWEN3_RERANKER_PAIR, "suffix": QWEN3_RERANKER_SUFFIX,
            "instruction": QWEN3_RERANKER_INSTRUCTION}  # fmt: skip


def _bge_reranker_v2_gemma(tokenizer: PreTrainedTokenizerBase) -> dict[str, str | None]:
    return {"prefix": _special(tokenizer, "bos"), "pair": "A: {query}\nB: {text}\n", "suffix": BGE_GEMMA_PROMPT,
            "instruction": None}  # fmt: skip


def _rankllama_v1(tokenizer: PreTrainedTokenizerBase) -> dict[str, str | None]:
    bos = _special(tokenizer, "bos")
    return {"prefix": bos, "pair": f"query: {{query}}{bos}document: {{title}} {{text}}", "suffix": "",
            "instruction": None}  # fmt: skip


def _special(tokenizer: PreTrainedTokenizerBase, name: str) -> str:
    token = getattr(tokenizer, f"{name}_token")
    if token is None:
        raise ParameterError(f"{{0}}: the tokenizer has no {name.upper()} token, which this preset's prompt starts "
                             "with", "preset")  # fmt: skip
    return token


PRESETS = {
    "qwen3-reranker": Preset("yes_no", YES_NO_TOKENS, _qwen3_reranker),
    "bge-reranker-v2-gemma": Preset("yes_no", ("Yes", None), _bge_reranker_v2_gemma),
    "rankllama-v1": Preset("last_token", None, _rankllama_v1, (32, 164)),  # Tevatron's (recipes/rankllama-lora.args)
}


def check_score_head(score_head: str | None, heads: tuple[str, ...] = SCORE_HEADS) -> None:
    """ParameterError unless `score_head` is None or one of `heads` (default: every backbone's)."""
    if score_head is not None and score_head not in heads:
        raise ParameterError(f"{{0}} must be one of {', '.join(heads)}, got {literal(repr(score_head))}", "score_head")


def check_preset(preset: str | None) -> None:
    """ParameterError unless `preset` is None or a known preset."""
    if preset is not None and preset not in PRESETS:
        raise ParameterError(f"{{0}} must be one of {', '.join(PRESETS)}, got {literal(repr(preset))}", "preset")


def default_template(score_head: str, tokenizer: PreTrainedTokenizerBase, name: str, given: dict) -> dict:
    """A decoder head's prompt when the checkpoint records none: Qwen3-Reranker's (yes_no); RankLLaMA's text
    between the tokenizer's leading specials and its EOS (last_token)."""
    if score_head == "yes_no":
        return _qwen3_reranker(tokenizer)
    if tokenizer.eos_token is None and "suffix" not in given:
        raise ParameterError(f"{{0}} last_token: the tokenizer of {literal(name)} has no EOS token to end a pair "
                             "with; give {1}", "score_head", "template_suffix")  # fmt: skip
    return {"prefix": leading_special_text(tokenizer), "pair": LAST_TOKEN_PAIR, "suffix": tokenizer.eos_token or ""}


def relevance_token_ids(
    tokenizer: PreTrainedTokenizerBase, tokens: tuple[str, str | None], name: str
) -> tuple[int, int | None]:
    """The ids of the true and false tokens (None: no false token), each a single token of the vocabulary (as
    Qwen3-Reranker's `convert_tokens_to_ids` and sentence-transformers' `LogitScore` read them).

    Returns:
        (true id, false id or None); a ParameterError naming the flag when one is not a single token.

    Example:
        >>> relevance_token_ids(qwen_tokenizer, ("yes", "no"), "Qwen/Qwen3-Reranker-0.6B")
        (9693, 2152)
    """
    ids = []
    for flag, word in zip(("true_token", "false_token"), tokens, strict=True):
        if word is None:
            ids.append(None)
            continue
        token_id = tokenizer.convert_tokens_to_ids(word)
        if token_id is None or token_id == tokenizer.unk_token_id or tokenizer.convert_ids_to_tokens(token_id) != word:
            raise ParameterError(f"{{0}} {literal(repr(word))} is not a single token of the vocabulary of "
                                 f"{literal(name)}", flag)  # fmt: skip
        ids.append(token_id)
    return ids[0], ids[1]
