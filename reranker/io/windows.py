"""Long documents cut into overlapping windows, each scored on its own (Dai and Callan's BERT-MaxP; PyTerrier's
`sliding(length, stride, prepend_attr='title')`; pygaggle's segments of 10 sentences, stride 5).

A window is `size` units (model tokens, whitespace-separated words or sentences) starting every `stride` units,
the last one ending with the document; a document of at most `size` units is one window. Units are found by their
character offsets in the original string, and a window's text is the slice of the original string from its first
unit to the start of the unit after its last (the document's end for the last window): nothing is re-tokenized
or lost, and windows that do not overlap (stride == size) concatenate back to the document.

A window's id is `DOCID#N` (N from 0), as in MS MARCO's segmented document corpus, so that a window passes
through the rerank file, the inference and its score file as any passage does, and `split_window_id` gives the
document back (at the last `#`: a docid may hold `#` itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from reranker.io.errors import InputError, ParameterError, check_at_least

WINDOW_ID_SEPARATOR = "#"
UNITS = ("tokens", "words", "sentences")
Spans = list[tuple[int, int]]  # (start, end) character offsets of a text's units, in order
SpanFinder = Callable[[Sequence[str]], list[Spans]]  # texts -> each one's unit spans


@dataclass(frozen=True)
class WindowSpec:
    """How documents are cut: `size` units a window, a new window every `stride` units.

    Args:
        size: units per window (>= 1).
        stride: units between window starts (1..size; default: size, no overlap).
        unit: "tokens" (a tokenizer's), "words" (whitespace-separated) or "sentences".
        prepend_title: every window carries the document's title (else only the first, as the whole document
            would: without windows a passage is `title + text`).
        names: the parameters' names in error messages (size, stride): a flag's or an API argument's.

    Example:
        >>> WindowSpec(128, 64).bounds(300)
        [(0, 128), (64, 192), (128, 256), (192, 300)]
    """

    size: int
    stride: int | None = None
    unit: str = "tokens"
    prepend_title: bool = False
    names: tuple[str, str] = ("window_tokens", "window_stride")

    def __post_init__(self) -> None:
        check_at_least(self.names[0], self.size, 1)
        if self.stride is None:
            object.__setattr__(self, "stride", self.size)
        check_at_least(self.names[1], self.stride, 1)
        if self.stride > self.size:  # units between windows would never be read
            raise ParameterError(f"{{1}} ({self.stride}) must not be larger than {{0}} ({self.size}): the units "
                                 "between windows would never be scored", *self.names)  # fmt: skip
        if self.unit not in UNITS:
            raise ParameterError(f"{{0}} must be one of {', '.join(UNITS)}, got {self.unit!r}", "window_unit")

    def bounds(self, units: int) -> list[tuple[int, int]]:
        """(first unit, end unit) of each window of a text of `units` units: one window when it fits."""
        bounds, start = [], 0
        while True:
            end = min(start + self.size, units)
            bounds.append((start, end))
            if end >= units:
                return bounds
            start += self.stride


class Window(NamedTuple):
    """One window of a document: its index, its title (see `WindowSpec.prepend_title`) and its text, the slice
    `[start, end)` of the document's text."""

    index: int
    title: str
    text: str
    start: int
    end: int


def cut_windows(title: str, text: str, spans: Spans, spec: WindowSpec) -> list[Window]:
    """A document's windows, given its text's unit spans (`span_finder`).

    Example:
        >>> [w.text for w in cut_windows("", "a b c", word_spans(["a b c"])[0], WindowSpec(2, 1, "words"))]
        ['a b ', 'b c']
    """
    windows = []
    for index, (first, end) in enumerate(spec.bounds(len(spans))):
        start = 0 if first == 0 else spans[first][0]
        stop = len(text) if end >= len(spans) else spans[end][0]
        windows.append(Window(index, title if index == 0 or spec.prepend_title else "", text[start:stop], start, stop))
    return windows


def window_id(docid: str, index: int) -> str:
    """The id of window `index` of document `docid`: `DOCID#N`."""
    return f"{docid}{WINDOW_ID_SEPARATOR}{index}"


def split_window_id(candidate: str, path: str | None = None, line: int | None = None) -> tuple[str, int]:
    """(document id, window index) of a window id `DOCID#N`; an InputError naming `path:line` for another id.

    Example:
        >>> split_window_id("D1555982#3")
        ('D1555982', 3)
    """
    docid, separator, index = candidate.rpartition(WINDOW_ID_SEPARATOR)
    if not separator or not docid or not index.isdigit() or not index.isascii():
        raise InputError(path, line, f"{candidate!r} is not a window id (DOCID#N): score a rerank file prepared "
                         "with --window_tokens or --window_sentences")  # fmt: skip
    return docid, int(index)


def word_spans(texts: Sequence[str]) -> list[Spans]:
    """Whitespace-separated words (PyTerrier's and BERT-MaxP's windows count words)."""
    return [[match.span() for match in re.finditer(r"\S+", text)] for text in texts]


def sentence_spans(texts: Sequence[str]) -> list[Spans]:
    """Sentences, by blingfire's rule-based splitter (the `windows` extra): it gives each sentence's offsets in
    the original string, needs no model download, and splits about a million sentences a second."""
    try:
        import blingfire
    except ImportError:
        raise ParameterError("{0} needs blingfire: pip install 'reranker[windows]'", "window_sentences") from None
    return [blingfire.text_to_sentences_and_offsets(text)[1] if text.strip() else [] for text in texts]


def token_spans(tokenizer) -> SpanFinder:
    """A tokenizer's tokens (a fast one: its offset mapping gives each token's characters), no special tokens."""
    if not getattr(tokenizer, "is_fast", False):
        raise ParameterError("{0} needs a fast tokenizer (one with offsets)", "tokenizer_name")

    def spans(texts: Sequence[str]) -> list[Spans]:
        encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [[tuple(span) for span in spans if span[1] > span[0]] for spans in encoded["offset_mapping"]]

    return spans


def span_finder(spec: WindowSpec, tokenizer=None) -> SpanFinder:
    """What finds `spec`'s units: the tokenizer's tokens (words without one), or sentences."""
    if spec.unit == "sentences":
        return sentence_spans
    if spec.unit == "tokens" and tokenizer is not None:
        return token_spans(tokenizer)
    return word_spans


def check_window_within(spec: WindowSpec, p_max_len: int) -> None:
    """ParameterError for token windows longer than `p_max_len`, the passage tokens the model reads: the encoder
    would cut every full window short, silently."""
    if spec.unit == "tokens" and spec.size > p_max_len:
        raise ParameterError(f"{{0}} ({spec.size}) must be <= p_max_len ({p_max_len}), the passage tokens the "
                             "model reads", spec.names[0])  # fmt: skip


def check_window_fits(spec: WindowSpec, tokenizer, query_tokens: int) -> None:
    """ParameterError where a window of `spec.size` tokens cannot reach the model: the model's length minus the
    query's tokens and the pair's special tokens must hold it, or every window would be cut short."""
    if spec.unit != "tokens" or tokenizer is None:
        return
    limit = getattr(tokenizer, "model_max_length", None)
    if not limit or limit > 1_000_000:  # a tokenizer that records no length (transformers' huge sentinel)
        return
    room = limit - query_tokens - tokenizer.num_special_tokens_to_add(pair=True)
    if spec.size > room:
        raise ParameterError(f"{{0}} ({spec.size}) does not fit the model: {limit} tokens hold the query "
                             f"({query_tokens}) and the special tokens, leaving {room}", spec.names[0])  # fmt: skip
