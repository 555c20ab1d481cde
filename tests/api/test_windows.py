"""`Reranker.rank` on long documents: windows of the model's tokens scored and aggregated in one call."""

from __future__ import annotations

import numpy as np
import pytest

from reranker import Reranker
from reranker.io.errors import ParameterError
from reranker.io.window_scores import Aggregate, aggregate_windows
from reranker.io.windows import WindowSpec, cut_windows, token_spans, window_id

QUERY = "how long do lobsters live"
FILLER = (
    "The harbour town holds a fair every August. Fishing boats line the quay, painted blue and white, and the "
    "market sells smoked fish, rope, nets and postcards. Visitors walk along the breakwater to the old lighthouse, "
    "which was rebuilt in 1911 after a winter storm. The ferry to the islands leaves twice a day in summer. "
)
LATE = FILLER * 3 + "Lobsters can live for more than 100 years; their age is hard to tell because they moult."
EARLY = "Lobsters are crustaceans of the sea floor. " + FILLER  # about lobsters, not about how long they live


@pytest.fixture(scope="module")
def zero_shot(minilm_path):
    """all-MiniLM-L6-v2 as a segment-cosine cross-encoder, untrained (its zero-shot start)."""
    return Reranker.from_pretrained(minilm_path, score_head="segment_cosine", p_max_len=128)


pytestmark = pytest.mark.slow  # real weights


def test_maxp_ranks_a_document_whose_answer_is_after_the_first_window_first_firstp_does_not(zero_shot):
    passages = [EARLY, LATE]
    assert len(zero_shot.tokenizer.tokenize(LATE)) > 200  # the answer is past the first window and p_max_len
    assert [i for i, _ in zero_shot.rank(QUERY, passages)] == [0, 1]  # cut at p_max_len: the answer never read
    assert [i for i, _ in zero_shot.rank(QUERY, passages, max_tokens_per_doc=96, aggregate="firstp")] == [0, 1]
    assert [i for i, _ in zero_shot.rank(QUERY, passages, max_tokens_per_doc=96, stride=48)] == [1, 0]  # maxp
    assert [i for i, _ in zero_shot.rank(QUERY, passages, max_tokens_per_doc=96, aggregate="kmaxavg:1")] == [1, 0]


def test_window_scores_are_the_windows_predicted_and_aggregated(zero_shot):
    """rank's scores = predict on each window (the texts prepare writes), aggregated as convert does."""
    passages = [("Lobster", LATE), EARLY, "Lobsters live long."]
    spec = WindowSpec(64, 32)
    scored = []
    for number, (title, text) in enumerate([passages[0], ("", EARLY), ("", passages[2])]):
        windows = cut_windows(title, text, token_spans(zero_shot.tokenizer)([text])[0], spec)
        scores = zero_shot.predict(QUERY, [(w.title, w.text) for w in windows])
        scored += [(window_id(str(number), w.index), float(s)) for w, s in zip(windows, scores, strict=True)]
    for aggregate in ("firstp", "maxp", "sump", "meanp", "kmaxavg:3"):
        expected = dict(aggregate_windows(scored, Aggregate.parse(aggregate)))
        ranked = zero_shot.rank(QUERY, passages, max_tokens_per_doc=64, stride=32, aggregate=aggregate)
        assert {str(i): s for i, s in ranked} == pytest.approx(expected, rel=1e-6)
    fitting = zero_shot.rank(QUERY, passages[2:], max_tokens_per_doc=64)
    assert fitting == [(0, float(np.float32(zero_shot.predict(QUERY, passages[2:])[0])))]  # one window: as is


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"max_tokens_per_doc": 64, "stride": 65}, r"stride \(65\) must not be larger than max_tokens_per_doc \(64\)"),
        ({"max_tokens_per_doc": 200}, r"max_tokens_per_doc \(200\) must be <= p_max_len \(128\)"),
        ({"max_tokens_per_doc": 0}, "max_tokens_per_doc must be >= 1, got 0"),
        ({"max_tokens_per_doc": 64, "aggregate": "best"}, "aggregate must be one of firstp, maxp"),
        ({"aggregate": "maxp"}, "stride and aggregate need max_tokens_per_doc"),
    ],
)
def test_bad_window_settings_name_the_argument(zero_shot, settings, message):
    with pytest.raises(ParameterError, match=message):
        zero_shot.rank(QUERY, [LATE], **settings)
