"""How a decoder reranker reads a pair: a text template, tokenized as the models' own reference code does.

A template has three parts: a `prefix` and a `suffix`, each tokenized on its own, once, and the `pair` text with
`{query}` and `{text}` (and optionally `{title}`) filled in per pair and tokenized in one piece. Pair ids are
`prefix + pair + suffix`. This is exactly how Qwen3-Reranker's model card builds its inputs, so that a pair needing
no truncation gets its reference token ids. Query and passage are cut to `q_max_len` / `p_max_len` tokens (counted
alone) before they are put into the template, as for BERT; the template's own tokens come on top.

`{text}` is the passage as BERT reads it (title, separator, text) unless the template also has `{title}`, in which
case `{title}` and `{text}` are the two fields.
"""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from transformers import PreTrainedTokenizerBase

from reranker.io.errors import ParameterError, literal
from reranker.model.pair_encoding import (
    EncodedPairs,
    GroupEncoder,
    check_max_lengths,
    flatten_token_lists,
    passage_text,
)

# Qwen3-Reranker's prompt, as its model card's reference code writes it (Qwen/Qwen3-Reranker-0.6B, "Transformers
# Usage": the system text, the default instruction, `format_instruction`, the assistant turn with an empty think)
QWEN3_RERANKER_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
QWEN3_RERANKER_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QWEN3_RERANKER_PAIR = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {text}"
QWEN3_RERANKER_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
# RankLLaMA's input (Ma et al., 2023; Tevatron's --query_prefix "query: " --passage_prefix "document: "
# --append_eos_token): the tokenizer's own leading tokens (Llama's BOS), the pair, EOS last
LAST_TOKEN_PAIR = "query: {query} document: {text}"
PLACEHOLDERS = ("query", "title", "text", "instruction")


@dataclass(frozen=True)
class PromptTemplate:
    """The three parts of a decoder reranker's input (see the module docstring), and the task instruction that
    fills the pair's `{instruction}` placeholder unless a query brings its own.

    Example:
        >>> PromptTemplate("", "query: {query} document: {text}", "</s>").format("q", "", "p")
        ('', 'query: q document: p', '</s>')
    """

    prefix: str
    pair: str
    suffix: str
    instruction: str | None = None

    def __post_init__(self) -> None:
        check_pair_template(self.pair)
        if self.has_instruction and self.instruction is None:
            raise ParameterError("{0} has an {{instruction}} placeholder: give {1}", "pair_template", "instruction")
        if self.instruction is not None and not self.has_instruction:
            raise ParameterError(f"{{0}} {literal(repr(self.instruction)):.80}: the prompt has no place for one (no "
                                 "{{instruction}} placeholder in {1})", "instruction", "pair_template")  # fmt: skip

    @property
    def has_instruction(self) -> bool:
        return "instruction" in template_fields(self.pair)

    @property
    def has_title(self) -> bool:
        return "title" in template_fields(self.pair)

    def format(
        self, query: str, title: str, text: str, separator: str = " ", instruction: str | None = None
    ) -> tuple[str, str, str]:
        """(prefix, the filled-in pair text, suffix) of one pair; `instruction` replaces the template's own."""
        fields = {"query": query, "instruction": self.instruction if instruction is None else instruction}
        if self.has_title:
            fields.update(title=title, text=text)
        else:
            fields["text"] = passage_text(title, text, separator)
        return self.prefix, self.pair.format(**fields), self.suffix

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def chat_template(self) -> str:
        """The prompt as a Jinja chat template over a `query` and a `document` message (sentence-transformers'
        CrossEncoder renders a pair so; `{title}` is empty there): saved with a checkpoint's tokenizer, it gives
        `apply_chat_template` and `CrossEncoder(path)` the text this template makes of the pair.

        Example:
            >>> PromptTemplate("", "q: {query} d: {text}", "</s>").chat_template()[-46:]
            '{{- "q: " ~ query ~ " d: " ~ text ~ "</s>" -}}'
        """
        pieces = [json.dumps(self.prefix)]
        for literal_text, field, _, _ in string.Formatter().parse(self.pair):
            pieces += [json.dumps(literal_text), field if field in ("query", "text", "instruction") else None]
        pieces.append(json.dumps(self.suffix))
        expression = " ~ ".join(piece for piece in pieces if piece and piece != '""')
        roles = "".join(f'{{%- set {name} = messages | selectattr("role", "eq", "{role}") | map(attribute="content")'
                        " | first -%}" for name, role in (("query", "query"), ("text", "document")))  # fmt: skip
        if self.has_instruction:  # a system message (CrossEncoder's `prompt=`) replaces the default instruction
            roles += ('{%- set instruction = messages | selectattr("role", "eq", "system") | map(attribute="content")'
                      f" | first | default({json.dumps(self.instruction)}, true) -%}}")  # fmt: skip
        return f"{roles}{{{{- {expression} -}}}}"


def template_fields(pair: str) -> list[str]:
    """The placeholder names of a pair template, in order; ParameterError if it cannot be parsed."""
    try:
        return [field for _, field, _, _ in string.Formatter().parse(pair) if field is not None]
    except ValueError as err:
        raise ParameterError(f"{{0}} {literal(repr(pair))}: {literal(err)} (write a literal brace as {{{{ or }}}})",
                             "pair_template") from None  # fmt: skip


def check_pair_template(pair: str) -> None:
    """ParameterError unless `pair` has `{query}` and `{text}` and no placeholder but those and `{title}`."""
    fields = template_fields(pair)
    unknown = sorted({field for field in fields if field not in PLACEHOLDERS})
    missing = [name for name in ("query", "text") if name not in fields]
    if unknown or missing:
        problem = f"unknown placeholder {{{unknown[0]}}}" if unknown else f"no {{{missing[0]}}} placeholder"
        raise ParameterError(
            f"{{0}} {literal(repr(pair))}: {literal(problem)}; it needs {{{{query}}}} and {{{{text}}}} "
            "(and may have {{{{title}}}} and {{{{instruction}}}})", "pair_template",
        )  # fmt: skip


def unescape_flag(value: str | None) -> str | None:
    """A template or instruction flag with `\\n` and `\\t` as the line break and tab they stand for (a shell
    passes them as a backslash and a letter).

    Example:
        >>> unescape_flag("<Query>: {query}\\n<Document>: {text}")
        '<Query>: {query}\n<Document>: {text}'
    """
    return None if value is None else value.replace("\\n", "\n").replace("\\t", "\t")


def leading_special_text(tokenizer: PreTrainedTokenizerBase) -> str:
    """The special tokens the tokenizer puts before a single text (Llama's BOS; nothing for Qwen), as text."""
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    start = full.index(bare[0]) if bare and bare[0] in full else 0
    return "".join(tokenizer.convert_ids_to_tokens(full[:start]))


class TextCutter:
    """Texts cut to at most `max_len` tokens (counted without special tokens), at a token's end; uncut texts are
    returned as they are. A fast tokenizer's Rust backend gives the character offsets."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_len: int) -> None:
        self.backend = copy.deepcopy(tokenizer.backend_tokenizer)
        self.backend.no_padding()
        self.backend.enable_truncation(max_len)

    def __call__(self, texts: Sequence[str]) -> list[str]:
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=False)
        return [text[: e.offsets[-1][1]] if e.overflowing else text for text, e in zip(texts, encodings, strict=True)]


class PromptEncoder(GroupEncoder):
    """Encodes (query, passage) pairs for a decoder reranker through a `PromptTemplate` (no segment ids)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        template: PromptTemplate,
        q_max_len: int,
        p_max_len: int,
        separator: str = " ",
    ) -> None:
        check_max_lengths(q_max_len, p_max_len)
        if getattr(tokenizer, "backend_tokenizer", None) is None:
            raise ParameterError(f"{{0}}: decoder rerankers need a fast tokenizer, got {type(tokenizer).__name__}",
                                 "tokenizer")  # fmt: skip
        self.tokenizer = tokenizer
        self.template = template
        self.q_max_len = q_max_len
        self.p_max_len = p_max_len
        self.separator = separator
        self.uses_token_types = False
        self.pad_token_id = tokenizer.pad_token_id
        self.backend = copy.deepcopy(tokenizer.backend_tokenizer)
        self.backend.no_padding()
        self.backend.no_truncation()
        self.prefix_ids = self._ids(template.prefix)
        self.suffix_ids = self._ids(template.suffix)
        self.takes_instruction = template.has_instruction
        literal_ids = self._ids(template.format("", "", "", separator)[1])
        self.longest_pair = len(self.prefix_ids) + len(literal_ids) + len(self.suffix_ids) + q_max_len + p_max_len
        self._queries = TextCutter(tokenizer, q_max_len)
        self._passages = TextCutter(tokenizer, p_max_len)

    def _ids(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids if text else []

    def _encode_part(
        self, queries: Sequence[str], passages: Sequence[Sequence[tuple[str, str]]], instructions: Sequence
    ) -> EncodedPairs:
        cut_queries = self._queries(queries)
        pair_query = np.repeat(np.arange(len(queries)), [len(group) for group in passages])
        flat = [passage for group in passages for passage in group]
        if self.template.has_title:
            titles = self._passages([title for title, _ in flat])
            texts = self._passages([text for _, text in flat])
        else:
            titles = [""] * len(flat)
            texts = self._passages([passage_text(title, text, self.separator) for title, text in flat])
        middles = [self.template.format(cut_queries[q], title, text, self.separator, instructions[q])[1]
                   for q, title, text in zip(pair_query, titles, texts, strict=True)]  # fmt: skip
        encodings = self.backend.encode_batch(middles, add_special_tokens=False)
        ids, offsets = flatten_token_lists([[*self.prefix_ids, *e.ids, *self.suffix_ids] for e in encodings])
        return EncodedPairs(ids, None, offsets)
