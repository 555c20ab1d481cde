"""Turning a (query, passage) pair into model inputs exactly as the reference recipe does.

Query: tokenized without special tokens, cut to `q_max_len`. Passage: `title + sep + text` (just `text` when
the title is empty), cut to `p_max_len`. Pair: `[CLS] q [SEP] p [SEP]` with segment ids 0/1, then `only_first`
truncation at `q_max_len + p_max_len`: the specials can push a pair up to 3 tokens over, and those tokens come off
the end of the query, never the passage. transformers 5 tokenizers no longer have `prepare_for_model`, so the pair
is assembled here from the two tokenized halves, with the special tokens the tokenizer itself puts around a pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase


def passage_text(title: str, text: str, separator: str = " ") -> str:
    """The passage as the model reads it: title and text joined by `separator`, or the text alone."""
    return f"{title}{separator}{text}" if title else text


@dataclass(frozen=True)
class PairTemplate:
    """Where a tokenizer puts its special tokens (and which segment ids) around a pair of sequences."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    prefix_types: tuple[int, ...]
    middle_types: tuple[int, ...]
    suffix_types: tuple[int, ...]
    first_type: int
    second_type: int

    @property
    def num_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase) -> PairTemplate:
        """Read the template off the tokenizer by encoding a pair of one-token sequences."""
        first = tokenizer.convert_tokens_to_ids(tokenizer.unk_token)
        second = tokenizer.convert_tokens_to_ids(tokenizer.pad_token)
        pair = tokenizer(tokenizer.unk_token, tokenizer.pad_token, return_token_type_ids=True, add_special_tokens=True)
        ids = list(pair["input_ids"])
        types = list(pair["token_type_ids"])
        if ids.count(first) != 1 or ids.count(second) != 1 or ids.index(first) > ids.index(second):
            raise ValueError(f"cannot read the pair template of tokenizer {type(tokenizer).__name__}: {ids}")
        a, b = ids.index(first), ids.index(second)
        return cls(
            tuple(ids[:a]),
            tuple(ids[a + 1 : b]),
            tuple(ids[b + 1 :]),
            tuple(types[:a]),
            tuple(types[a + 1 : b]),
            tuple(types[b + 1 :]),
            types[a],
            types[b],
        )


class PairEncoder:
    """Encodes batches of (query, passage) pairs into `input_ids` and `token_type_ids` lists (no padding)."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, q_max_len: int, p_max_len: int, separator: str = " "
    ) -> None:
        if q_max_len < 1 or p_max_len < 1:
            raise ValueError(f"q_max_len and p_max_len must be >= 1, got {q_max_len} and {p_max_len}")
        self.tokenizer = tokenizer
        self.q_max_len = q_max_len
        self.p_max_len = p_max_len
        self.separator = separator
        self.template = PairTemplate.from_tokenizer(tokenizer)
        self.uses_token_types = "token_type_ids" in tokenizer.model_input_names

    def _tokenize(self, texts: Sequence[str], max_len: int) -> list[list[int]]:
        encoded = self.tokenizer(
            list(texts), add_special_tokens=False, truncation=True, max_length=max_len, return_attention_mask=False
        )
        return encoded["input_ids"]

    def tokenize_queries(self, queries: Sequence[str]) -> list[list[int]]:
        return self._tokenize(queries, self.q_max_len)

    def tokenize_passages(self, titles: Sequence[str], texts: Sequence[str]) -> list[list[int]]:
        joined = [passage_text(title, text, self.separator) for title, text in zip(titles, texts, strict=True)]
        return self._tokenize(joined, self.p_max_len)

    def join(self, query: list[int], passage: list[int]) -> tuple[list[int], list[int]]:
        """Assemble one pair with `only_first` truncation at q_max_len + p_max_len.

        When the query is too short to absorb the overflow (possible only if q_max_len < num_special), the rest
        comes off the end of the passage, so that no pair ever exceeds the limit.
        """
        t = self.template
        room = self.q_max_len + self.p_max_len - t.num_special
        query = query[: max(0, room - len(passage))]
        passage = passage[: room - len(query)]
        ids = [*t.prefix, *query, *t.middle, *passage, *t.suffix]
        types = [
            *t.prefix_types,
            *([t.first_type] * len(query)),
            *t.middle_types,
            *([t.second_type] * len(passage)),
            *t.suffix_types,
        ]
        return ids, types

    def encode(self, queries: Sequence[str], titles: Sequence[str], texts: Sequence[str]):
        """Encode aligned lists of queries and passages; returns (input_ids lists, token_type_ids lists)."""
        query_ids = self.tokenize_queries(queries)
        passage_ids = self.tokenize_passages(titles, texts)
        pairs = [self.join(q, p) for q, p in zip(query_ids, passage_ids, strict=True)]
        return [ids for ids, _ in pairs], [types for _, types in pairs]
