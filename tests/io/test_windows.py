"""Windows cut on unit boundaries and re-joined from the original string; window scores aggregated."""

import math

import numpy as np
import pytest

from reranker.io.errors import InputError, ParameterError
from reranker.io.window_scores import Aggregate, aggregate_windows
from reranker.io.windows import (
    WindowSpec,
    cut_windows,
    sentence_spans,
    split_window_id,
    token_spans,
    window_id,
    word_spans,
)

TEXT = "  The lobster roll,\ta sandwich of New England:\n\nlobster meat on a  grilled bun.  "


def windows(text, spec, title="T", spans=None):
    return cut_windows(title, text, spans if spans is not None else word_spans([text])[0], spec)


def test_windows_without_overlap_concatenate_back_to_the_document():
    cut = windows(TEXT, WindowSpec(4, unit="words"))
    assert [w.text for w in cut] == ["  The lobster roll,\ta ", "sandwich of New England:\n\n",
                                     "lobster meat on a  ", "grilled bun.  "]  # fmt: skip
    assert "".join(w.text for w in cut) == TEXT
    assert [w.title for w in cut] == ["T", "", "", ""]  # the title goes with the first window, as with the whole


def test_overlapping_windows_are_slices_of_the_original_string_starting_every_stride_words():
    cut = windows(TEXT, WindowSpec(4, 2, "words", prepend_title=True))
    assert [(w.index, w.title) for w in cut] == [(i, "T") for i in range(6)]  # 14 words: starts 0, 2, ..., 10
    assert all(TEXT[w.start : w.end] == w.text for w in cut)
    words = TEXT.split()
    assert [w.text.split() for w in cut] == [words[i : i + 4] for i in range(0, 11, 2)]
    # the windows that start every stride (0, 2, 4, ...) re-join to the document, each cut where the next starts
    assert "".join(w.text[: cut[i + 1].start - w.start] for i, w in enumerate(cut[:-1])) + cut[-1].text == TEXT


def test_a_document_that_fits_is_one_window_its_whole_text():
    assert windows("short text", WindowSpec(4, 2, "words")) == [(0, "T", "short text", 0, 10)]
    assert windows("", WindowSpec(4, unit="words"), spans=[]) == [(0, "T", "", 0, 0)]


def test_token_windows_cut_on_the_tokenizers_boundaries(tokenizer):
    text = "Lobsters' claws: unbelievably strong — 100 kg!"
    spans = token_spans(tokenizer)([text])[0]
    tokens = tokenizer.tokenize(text)
    assert len(spans) == len(tokens) > 8  # subwords: "unbelievably" is several tokens, cut between them
    cut = cut_windows("", text, spans, WindowSpec(5))
    assert "".join(w.text for w in cut) == text
    assert [tokenizer.tokenize(w.text) for w in cut] == [tokens[i : i + 5] for i in range(0, len(tokens), 5)]


def test_sentence_windows():
    text = "Dr. Smith sailed to Maine. He ate lobster! Was it good? Yes.  It was."
    spans = sentence_spans([text])[0]
    assert [text[a:b] for a, b in spans] == ["Dr. Smith sailed to Maine.", "He ate lobster!", "Was it good?",
                                             "Yes.", "It was."]  # fmt: skip
    cut = cut_windows("", text, spans, WindowSpec(2, 1, "sentences"))
    assert [w.text for w in cut] == ["Dr. Smith sailed to Maine. He ate lobster! ", "He ate lobster! Was it good? ",
                                     "Was it good? Yes.  ", "Yes.  It was."]  # fmt: skip


@pytest.mark.parametrize(
    "size, stride, message",
    [
        (4, 5, r"window_stride \(5\) must not be larger than window_tokens \(4\)"),
        (0, None, "window_tokens must be >= 1, got 0"),
        (4, 0, "window_stride must be >= 1, got 0"),
    ],
)
def test_bad_window_settings(size, stride, message):
    with pytest.raises(ParameterError, match=message):
        WindowSpec(size, stride)


def test_window_ids_round_trip_and_other_ids_name_their_line():
    assert split_window_id(window_id("doc#7", 12)) == ("doc#7", 12)
    for bad in ("D1", "D1#", "#3", "D1#x", "D1#-1", "D1#٣"):
        with pytest.raises(InputError, match=r"s\.txt:4: .* is not a window id \(DOCID#N\)"):
            split_window_id(bad, "s.txt", 4)


# three documents, their window scores (window index, score) in the order a score file holds them (best first)
SCORED = [("a#2", 3.5), ("b#0", 2.0), ("c#1", 1.25), ("a#0", 1.0), ("b#1", 0.5), ("c#0", -1.0), ("a#1", -2.0)]


@pytest.mark.parametrize(
    "aggregate, expected",
    [
        ("firstp", {"a": 1.0, "b": 2.0, "c": -1.0}),  # window 0's score
        ("maxp", {"a": 3.5, "b": 2.0, "c": 1.25}),
        ("sump", {"a": 3.5 + 1.0 - 2.0, "b": 2.5, "c": 0.25}),
        ("meanp", {"a": 2.5 / 3, "b": 1.25, "c": 0.125}),
        ("kmaxavg:2", {"a": 2.25, "b": 1.25, "c": 0.125}),  # the mean of the 2 best
        ("kmaxavg:5", {"a": 2.5 / 3, "b": 1.25, "c": 0.125}),  # fewer windows than k: all of them
        ("kmaxavg:1", {"a": 3.5, "b": 2.0, "c": 1.25}),  # = maxp
    ],
)
def test_aggregates_by_hand_on_three_documents(aggregate, expected):
    combined = aggregate_windows(SCORED, Aggregate.parse(aggregate))
    assert [docid for docid, _ in combined] == ["a", "b", "c"]  # the order of their first window
    assert dict(combined) == {docid: float(np.float32(score)) for docid, score in expected.items()}
    assert math.isclose(dict(combined)["a"], expected["a"], rel_tol=1e-7)


@pytest.mark.parametrize("name", ["max", "kmaxavg", "kmaxavg:0", "kmaxavg:-1", "kmaxavg:x", "maxp:2", "MaxP", ""])
def test_unknown_aggregates_are_refused(name):
    with pytest.raises(ParameterError, match=r"aggregate must be one of firstp, maxp, sump, meanp, kmaxavg:K"):
        Aggregate.parse(name)
