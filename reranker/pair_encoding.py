"""Turning a (query, passage) pair into model inputs exactly as the reference recipe does.

Query: tokenized without special tokens, cut to `q_max_len`. Passage: `title + sep + text` (just `text` when
the title is empty), cut to `p_max_len`. Pair: `[CLS] q [SEP] p [SEP]` with segment ids 0/1, then `only_first`
truncation at `q_max_len + p_max_len`: the specials can push a pair up to 3 tokens over, and those tokens come off
the end of the query, never the passage. transformers 5 tokenizers no longer have `prepare_for_model`, so the pair
is assembled here from the two tokenized halves, with the special tokens the tokenizer itself puts around a pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
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
    """Encodes batches of (query, passage) pairs into token ids and segment ids (no padding)."""

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

    def join_groups(
        self, queries: Sequence[str], passages: Sequence[Sequence[tuple[str, str]]]
    ) -> list[tuple[list[int], list[int]]]:
        """Encode each query (tokenized once) with each of its (title, text) passages, group after group."""
        query_ids = self.tokenize_queries(queries)
        flat = [passage for group in passages for passage in group]
        passage_ids = iter(self.tokenize_passages([title for title, _ in flat], [text for _, text in flat]))
        return [self.join(q, next(passage_ids)) for q, group in zip(query_ids, passages, strict=True) for _ in group]

    def encode_groups(
        self, queries: Sequence[str], passages: Sequence[Sequence[tuple[str, str]]], pairs_per_call: int = 1024
    ) -> EncodedPairs:
        """`join_groups` into compact storage, tokenizing about `pairs_per_call` pairs at a time: the tokenizer's
        Python lists for a whole chunk would take ten times the memory of the result."""
        parts, start = [], 0
        while start < len(queries):
            end, size = start, 0
            while end < len(queries) and (end == start or size + len(passages[end]) <= pairs_per_call):
                size += len(passages[end])
                end += 1
            pairs = self.join_groups(queries[start:end], passages[start:end])
            parts.append(EncodedPairs.from_pairs(pairs, self.uses_token_types))
            start = end
        return EncodedPairs.concatenate(parts, self.uses_token_types)

    def encode(self, queries: Sequence[str], titles: Sequence[str], texts: Sequence[str]) -> EncodedPairs:
        """Encode aligned lists of queries and passages."""
        pairs = self.join_groups(queries, [[passage] for passage in zip(titles, texts, strict=True)])
        return EncodedPairs.from_pairs(pairs, self.uses_token_types)


@dataclass(frozen=True)
class EncodedPairs:
    """Encoded pairs stored flat: int32 token ids and int8 segment ids of all pairs end to end, and where each
    pair starts. About 5 bytes a token, against about 40 in Python lists: a chunk of pairs stays small."""

    ids: np.ndarray
    types: np.ndarray | None
    offsets: np.ndarray

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[list[int], list[int]]], with_types: bool) -> EncodedPairs:
        offsets = np.zeros(len(pairs) + 1, dtype=np.int64)
        np.cumsum([len(ids) for ids, _ in pairs], out=offsets[1:])
        ids = np.fromiter(itertools.chain.from_iterable(ids for ids, _ in pairs), np.int32, count=offsets[-1])
        types = None
        if with_types:
            types = np.fromiter(itertools.chain.from_iterable(t for _, t in pairs), np.int8, count=offsets[-1])
        return cls(ids, types, offsets)

    @classmethod
    def concatenate(cls, parts: Sequence[EncodedPairs], with_types: bool) -> EncodedPairs:
        if not parts:
            return cls(np.zeros(0, np.int32), np.zeros(0, np.int8) if with_types else None, np.zeros(1, np.int64))
        shifts = np.cumsum([0] + [part.offsets[-1] for part in parts[:-1]])
        offsets = np.concatenate(
            [parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shifts, strict=True)]
        )
        types = np.concatenate([part.types for part in parts]) if with_types else None
        return cls(np.concatenate([part.ids for part in parts]), types, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> tuple[list[int], list[int] | None]:
        """Pair `i` as (token ids, segment ids or None)."""
        start, end = self.offsets[i], self.offsets[i + 1]
        return self.ids[start:end].tolist(), None if self.types is None else self.types[start:end].tolist()

    def padded_batch(self, index: np.ndarray, length: int, pad_token_id: int) -> dict[str, torch.Tensor]:
        """Model inputs for pairs `index` right-padded to `length` tokens. The attention mask is left out when no
        pair needs padding, so that SDPA can take its fused path."""
        starts = self.offsets[index]
        real = np.arange(length) < (self.offsets[index + 1] - starts)[:, None]
        positions = np.where(real, starts[:, None] + np.arange(length), 0)
        batch = {"input_ids": torch.from_numpy(np.where(real, self.ids[positions], pad_token_id).astype(np.int64))}
        if self.types is not None:
            batch["token_type_ids"] = torch.from_numpy(np.where(real, self.types[positions], 0).astype(np.int64))
        if not real.all():
            batch["attention_mask"] = torch.from_numpy(real.astype(np.int64))
        return batch
