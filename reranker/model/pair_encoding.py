"""Turning a (query, passage) pair into model inputs exactly as the reference recipe does.

Query: tokenized without special tokens, cut to `q_max_len`. Passage: `title + sep + text` (just `text` when
the title is empty), cut to `p_max_len`. Pair: `[CLS] q [SEP] p [SEP]` with segment ids 0/1, then `only_first`
truncation at `q_max_len + p_max_len`: the specials can push a pair up to 3 tokens over, and those tokens come off
the end of the query, never the passage. transformers 5 tokenizers no longer have `prepare_for_model`, so pairs
are assembled here from the two tokenized halves, with the special tokens the tokenizer itself puts around a pair,
all pairs of a batch at once in numpy: per-pair Python would hold the GIL that the scoring thread needs.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import normalizers
from transformers import PreTrainedTokenizerBase

from reranker.io.errors import ParameterError, check_at_least, literal

logger = logging.getLogger(__name__)


def check_max_lengths(q_max_len: int, p_max_len: int) -> None:
    """ParameterError unless both lengths are at least 1."""
    check_at_least("q_max_len", q_max_len, 1)
    check_at_least("p_max_len", p_max_len, 1)


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


class TruncatingTokenizer:
    """Token ids of texts without special tokens, each cut to `max_len`, as `tokenizer(texts, truncation=True,
    max_length=max_len, add_special_tokens=False)` gives them, returned flat with offsets.

    A fast tokenizer's Rust backend is called directly (a private copy, so the shared tokenizer's settings stay
    untouched): transformers' per-text conversion to Python dicts held the GIL for three quarters of the host time
    per pair, time the scoring thread needs to keep a GPU fed. A slow tokenizer goes through transformers.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_len: int) -> None:
        self.tokenizer = tokenizer
        self.max_len = max_len
        self.backend = copy.deepcopy(getattr(tokenizer, "backend_tokenizer", None))
        if self.backend is not None:
            self.backend.no_padding()
            self.backend.enable_truncation(max_len, direction=tokenizer.truncation_side)
            self.backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
        self.plain_ascii = PlainAsciiPath.for_backend(self.backend)

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(int32 token ids of all texts end to end, int64 offsets: text i is ids[offsets[i]:offsets[i + 1]])."""
        if self.backend is None:
            lists = self.tokenizer(
                list(texts), add_special_tokens=False, truncation=True, max_length=self.max_len,
                return_attention_mask=False,
            )["input_ids"]  # fmt: skip
        elif self.plain_ascii is None:
            lists = _token_lists(self.backend, list(texts))
        else:
            lists = self._by_plain_ascii_path(list(texts))
        return flatten_token_lists(lists)

    def _by_plain_ascii_path(self, texts: list[str]) -> list[list[int]]:
        """Plain-ASCII texts, normalized here, through the backend without a normalizer; the others through the
        full backend; in input order."""
        prepared = [self.plain_ascii.normalized(text) for text in texts]
        lists: list[list[int]] = [[]] * len(texts)
        plain = [i for i, text in enumerate(prepared) if text is not None]
        for i, ids in zip(plain, _token_lists(self.plain_ascii.backend, [prepared[i] for i in plain]), strict=True):
            lists[i] = ids
        others = [i for i, text in enumerate(prepared) if text is None]
        for i, ids in zip(others, _token_lists(self.backend, [texts[i] for i in others]), strict=True):
            lists[i] = ids
        return lists


class PlainAsciiPath:
    """BERT's normalizer done in Python for printable ASCII, where it reduces to `str.lower()`.

    On printable ASCII (no control characters, no tab or line break) BERT's normalizer (clean text, Chinese
    characters, accents, lower case) only lower-cases: Python's C `str.lower` gives the same normalized text, so
    the same tokens, and a backend copy without a normalizer skips the Rust normalizer's per-character alignment
    bookkeeping (13% of the tokenizer's CPU on MS MARCO passages, BENCHMARKS.md). Lower-casing before the backend
    sees the text would change which added tokens (`[SEP]`, ...) match it, so a text in which any appears, in
    any case, takes the full backend.
    """

    def __init__(self, backend, lowercase: bool) -> None:
        self.backend = backend
        self.lowercase = lowercase
        self.added = tuple(token.content.lower() for token in backend.get_added_tokens_decoder().values())

    @classmethod
    def for_backend(cls, backend) -> PlainAsciiPath | None:
        """The path for a BERT-normalizer backend (a private copy, its normalizer removed); None for any other."""
        if backend is None or not isinstance(backend.normalizer, normalizers.BertNormalizer):
            return None
        lowercase = backend.normalizer.lowercase
        plain = copy.deepcopy(backend)
        plain.normalizer = None
        return cls(plain, lowercase)

    def normalized(self, text: str) -> str | None:
        """The text as BERT's normalizer leaves it, or None where the full backend must take it."""
        if not (text.isascii() and text.isprintable()):  # isprintable: no control characters, tab or line break
            return None
        if not self.lowercase:
            return text
        lowered = text.lower()
        return None if any(token in lowered for token in self.added) else lowered


def _token_lists(backend, texts: list[str]) -> list[list[int]]:
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)  # _fast: no char offsets
    return [encoding.ids for encoding in encode(texts, add_special_tokens=False)] if texts else []


def flatten_token_lists(lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Lists of token ids as (all ids end to end, int32; offsets, int64, one more than there are lists)."""
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(ids) for ids in lists], out=offsets[1:])
    return np.fromiter(itertools.chain.from_iterable(lists), np.int32, count=int(offsets[-1])), offsets


class GroupEncoder:
    """Encodes (query, passage) pairs into `EncodedPairs`, a part of about `pairs_per_call` pairs at a time; what a
    pair's tokens are is the subclass's `_encode_part` (`PairEncoder`: BERT-style; `PromptEncoder`: a decoder's
    template). Both have `q_max_len`, `p_max_len`, `separator`, `pad_token_id`, `uses_token_types`,
    `longest_pair` (an upper bound of a pair's tokens, with the default instruction) and `takes_instruction`
    (whether a query's own instruction has a place in the pair)."""

    takes_instruction = False
    warned_of_instructions = False

    def encode_groups(
        self,
        queries: Sequence[str],
        passages: Sequence[Sequence[tuple[str, str]]],
        pairs_per_call: int = 4096,
        instructions: Sequence[str | None] | None = None,
    ) -> EncodedPairs:
        """Encode each query with each of its (title, text) passages, group after group, tokenizing about
        `pairs_per_call` pairs at a time: the tokenizer's encodings (tokens, offsets, masks) for a whole chunk
        would take many times the memory of the result. `instructions`: each query's own (None: the default);
        where the pair has no place for one (an encoder; a prompt without `{instruction}`) they are left out, with
        one warning: a query's field is data for the prompts that use it (FlagEmbedding rows carry a `prompt`)."""
        instructions = list(instructions) if instructions is not None else [None] * len(queries)
        if not self.takes_instruction and not self.warned_of_instructions and any(instructions):
            logger.warning("the queries' instruction fields are not used: the model's pair layout has no place "
                           "for an instruction")  # fmt: skip
            self.warned_of_instructions = True
        parts, start = [], 0
        while start < len(queries):
            end, size = start, 0
            while end < len(queries) and (end == start or size + len(passages[end]) <= pairs_per_call):
                size += len(passages[end])
                end += 1
            parts.append(self._encode_part(queries[start:end], passages[start:end], instructions[start:end]))
            start = end
        return EncodedPairs.concatenate(parts, self.uses_token_types)

    def encode(
        self,
        queries: Sequence[str],
        titles: Sequence[str],
        texts: Sequence[str],
        instructions: Sequence[str | None] | None = None,
    ) -> EncodedPairs:
        """Encode aligned lists of queries and passages (and each pair's instruction, None: the default)."""
        pairs = [[passage] for passage in zip(titles, texts, strict=True)]
        return self.encode_groups(queries, pairs, instructions=instructions)

    def _encode_part(
        self, queries: Sequence[str], passages: Sequence[Sequence[tuple[str, str]]], instructions: Sequence
    ) -> EncodedPairs:
        raise NotImplementedError


class PairEncoder(GroupEncoder):
    """Encodes batches of (query, passage) pairs into token ids and segment ids (no padding); each query is
    tokenized once for all its passages."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, q_max_len: int, p_max_len: int, separator: str = " "
    ) -> None:
        check_max_lengths(q_max_len, p_max_len)
        if tokenizer.unk_token is None or tokenizer.pad_token is None:
            raise ParameterError(f"{{0}} {literal(tokenizer.name_or_path)} has no unknown or padding token",
                                 "tokenizer")  # fmt: skip
        self.tokenizer = tokenizer
        self.q_max_len = q_max_len
        self.p_max_len = p_max_len
        self.longest_pair = q_max_len + p_max_len
        self.separator = separator
        self.template = PairTemplate.from_tokenizer(tokenizer)
        self.room = q_max_len + p_max_len - self.template.num_special  # query + passage tokens a pair can hold
        if self.room < 1:
            raise ParameterError(
                f"{{0}} + {{1}} = {q_max_len + p_max_len} leaves no room beside the pair's "
                f"{self.template.num_special} special tokens",
                "q_max_len",
                "p_max_len",
            )
        self.uses_token_types = "token_type_ids" in tokenizer.model_input_names
        self.pad_token_id = tokenizer.pad_token_id or 0
        self._queries = TruncatingTokenizer(tokenizer, q_max_len)
        self._passages = TruncatingTokenizer(tokenizer, p_max_len)

    def join(self, query: list[int], passage: list[int]) -> tuple[list[int], list[int]]:
        """One pair from its tokenized (and cut) query and passage: the rule `encode_groups` applies to all pairs
        at once, written out for one (cheaper for a single pair, and what the batched assembly is tested against).

        Truncation is `only_first` at q_max_len + p_max_len: the specials can push a pair up to 3 tokens over, and
        those come off the end of the query; only if the query is too short to absorb them (q_max_len below the
        number of specials) does the rest come off the end of the passage, so that no pair exceeds the limit.
        """
        t = self.template
        query = query[: max(0, self.room - len(passage))]
        passage = passage[: self.room - len(query)]
        ids = [*t.prefix, *query, *t.middle, *passage, *t.suffix]
        types = [
            *t.prefix_types,
            *([t.first_type] * len(query)),
            *t.middle_types,
            *([t.second_type] * len(passage)),
            *t.suffix_types,
        ]
        return ids, types

    def _encode_part(
        self, queries: Sequence[str], passages: Sequence[Sequence[tuple[str, str]]], instructions: Sequence
    ) -> EncodedPairs:
        flat = [passage_text(title, text, self.separator) for group in passages for title, text in group]
        pair_query = np.repeat(np.arange(len(queries)), [len(group) for group in passages])
        return self._assemble(*self._queries(queries), *self._passages(flat), pair_query)

    def _assemble(
        self, q_ids: np.ndarray, q_offsets: np.ndarray, p_ids: np.ndarray, p_offsets: np.ndarray, pair_query
    ) -> EncodedPairs:
        """`join` of passage i with query pair_query[i], for all passages at once."""
        t = self.template
        q_start = q_offsets[pair_query]
        q_len, p_len = q_offsets[pair_query + 1] - q_start, np.diff(p_offsets)
        q_keep = np.minimum(q_len, np.maximum(0, self.room - p_len))
        p_keep = np.minimum(p_len, self.room - q_keep)
        # Every pair is five runs of one source array (specials, all query ids, all passage ids), gathered at once.
        specials = np.array(t.prefix + t.middle + t.suffix, dtype=np.int32)
        n, first_query, first_passage = len(p_len), len(specials), len(specials) + len(q_ids)
        run_starts = np.stack(
            [np.zeros(n, np.int64), first_query + q_start, np.full(n, len(t.prefix)), first_passage + p_offsets[:-1],
             np.full(n, len(t.prefix) + len(t.middle))], axis=1,
        ).ravel()  # fmt: skip
        run_lengths = np.stack(
            [np.full(n, len(t.prefix)), q_keep, np.full(n, len(t.middle)), p_keep, np.full(n, len(t.suffix))], axis=1
        ).ravel()
        gather = np.repeat(run_starts - (np.cumsum(run_lengths) - run_lengths), run_lengths)
        gather += np.arange(len(gather))
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(run_lengths.reshape(n, 5).sum(axis=1), out=offsets[1:])
        ids = np.concatenate([specials, q_ids, p_ids])[gather]
        types = None
        if self.uses_token_types:
            type_source = np.concatenate([
                np.array(t.prefix_types + t.middle_types + t.suffix_types, dtype=np.int8),
                np.full(len(q_ids), t.first_type, np.int8), np.full(len(p_ids), t.second_type, np.int8),
            ])  # fmt: skip
            types = type_source[gather]
        return EncodedPairs(ids, types, offsets)


@dataclass(frozen=True)
class EncodedPairs:
    """Encoded pairs stored flat: int32 token ids and int8 segment ids of all pairs end to end, and where each
    pair starts. About 5 bytes a token, against about 40 in Python lists: a chunk of pairs stays small."""

    ids: np.ndarray
    types: np.ndarray | None
    offsets: np.ndarray

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

    def slice(self, start: int, end: int) -> EncodedPairs:
        """Pairs `start` to `end` (exclusive) as their own `EncodedPairs` (views, no copy)."""
        first, last = self.offsets[start], self.offsets[end]
        types = None if self.types is None else self.types[first:last]
        return EncodedPairs(self.ids[first:last], types, self.offsets[start : end + 1] - first)

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
