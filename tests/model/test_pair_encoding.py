import gzip
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reranker.model.pair_encoding import PairEncoder, PairTemplate, TruncatingTokenizer, passage_text

CLS, SEP = 101, 102
# bert-base-uncased / MiniLM vocabulary ids
WHAT, IS, THE, CAPITAL, OF, FRANCE = 2054, 2003, 1996, 3007, 1997, 2605
PARIS, AND, LARGEST, CITY = 3000, 1998, 2922, 2103
QUERY = "what is the capital of france"
PASSAGE = "paris is the capital and largest city of france"


def test_passage_text_joins_title_and_skips_empty_title():
    assert passage_text("Paris", "is a city") == "Paris is a city"
    assert passage_text("", "is a city") == "is a city"
    assert passage_text("Paris", "is a city", " [SEP] ") == "Paris [SEP] is a city"


def test_bert_template(tokenizer):
    template = PairTemplate.from_tokenizer(tokenizer)
    assert (template.prefix, template.middle, template.suffix) == ((CLS,), (SEP,), (SEP,))
    assert (template.first_type, template.second_type) == (0, 1)
    assert template.suffix_types == (1,)
    assert template.num_special == 3


def test_pair_without_truncation(tokenizer):
    encoder = PairEncoder(tokenizer, q_max_len=16, p_max_len=128)
    ids, types = encoder.encode([QUERY], [""], [PASSAGE])[0]
    assert ids == [CLS, WHAT, IS, THE, CAPITAL, OF, FRANCE, SEP, PARIS, IS, THE, CAPITAL, AND, LARGEST, CITY, OF,
                      FRANCE, SEP]  # fmt: skip
    assert types == [0] * 8 + [1] * 10
    # identical to the tokenizer's own pair encoding when nothing is cut
    assert ids == tokenizer(QUERY, PASSAGE)["input_ids"]
    assert types == tokenizer(QUERY, PASSAGE)["token_type_ids"]


def test_each_half_cut_to_its_own_limit(tokenizer):
    encoder = PairEncoder(tokenizer, q_max_len=5, p_max_len=8)
    ids, types = encoder.encode([QUERY], [""], [PASSAGE])[0]
    # q 5 + p 8 + 3 specials = 16 > 13: the 3 extra tokens come off the END OF THE QUERY (only_first)
    assert ids == [CLS, WHAT, IS, SEP, PARIS, IS, THE, CAPITAL, AND, LARGEST, CITY, OF, SEP]
    assert types == [0, 0, 0, 0] + [1] * 9


def test_query_loses_tokens_only_when_the_pair_overflows(tokenizer):
    encoder = PairEncoder(tokenizer, q_max_len=4, p_max_len=12)
    ids, _ = encoder.encode([QUERY], [""], [PASSAGE])[0]
    # passage has 9 tokens: 4 + 9 + 3 = 16 = limit, so the query keeps all 4 tokens
    assert ids == [CLS, WHAT, IS, THE, CAPITAL, SEP, PARIS, IS, THE, CAPITAL, AND, LARGEST, CITY, OF, FRANCE, SEP]
    assert len(ids) == 16


def test_title_is_part_of_the_passage(tokenizer):
    encoder = PairEncoder(tokenizer, q_max_len=16, p_max_len=128)
    ids, _ = encoder.encode(["capital"], ["France"], ["paris"])[0]
    assert ids == [CLS, CAPITAL, SEP, FRANCE, PARIS, SEP]


def test_reference_lengths_never_exceed_144(tokenizer):
    encoder = PairEncoder(tokenizer, q_max_len=16, p_max_len=128)
    long_query = " ".join(["capital"] * 30)
    ids, types = encoder.encode([long_query], [""], [" ".join(["paris"] * 300)])[0]
    assert len(ids) == 144
    assert ids[:15] == [CLS] + [CAPITAL] * 13 + [SEP]  # 16 query tokens minus the 3 that overflow
    assert ids[15:] == [PARIS] * 128 + [SEP]
    assert types == [0] * 15 + [1] * 129


@pytest.mark.parametrize("q_max_len, p_max_len", [(0, 128), (16, 0)])
def test_rejects_nonsensical_lengths(tokenizer, q_max_len, p_max_len):
    with pytest.raises(ValueError, match="must be >= 1"):
        PairEncoder(tokenizer, q_max_len, p_max_len)


def test_rejects_limits_that_leave_no_room_beside_the_specials(tokenizer):
    with pytest.raises(ValueError, match="leaves no room beside the pair's 3 special tokens"):
        PairEncoder(tokenizer, 1, 2)


TRICKY_TEXTS = ["", "   ", "naïve café", "東京 タワー", "emoji 🙂 here", "a [SEP] b [CLS]", "x" * 3000,
                "line\nbreak\ttab", "\u2028separator\u0085next", "Ã© mojibake IliÄ", "UPPER Case, ASCII!",
                "ctrl\x01char", "del\x7fchar", "carriage\rreturn", "nul\x00byte", "CAFÉ Naïve",
                "Upper [CLS] and [MASK]ed", "lower [sep] and [Pad]"]  # fmt: skip


class SlowTokenizer:
    """The tokenizer seen through a wrapper without a Rust backend, as a pure-Python tokenizer is."""

    def __init__(self, tokenizer):
        self.wrapped = tokenizer

    def __call__(self, *args, **kwargs):
        return self.wrapped(*args, **kwargs)


@pytest.mark.parametrize("max_len", [1, 16, 128])
def test_truncating_tokenizer_matches_the_transformers_call(tokenizer, offline_data, max_len):
    with gzip.open(offline_data / "corpus.jsonl.gz", "rt") as lines:
        corpus = [passage_text(row["title"], row["text"]) for row in map(json.loads, itertools.islice(lines, 3000))]
    queries = [line.split("\t")[1] for line in (offline_data / "dev600" / "queries.tsv").read_text().splitlines()]
    texts = corpus + queries + TRICKY_TEXTS
    expected = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_len)["input_ids"]
    shared_settings = tokenizer.backend_tokenizer.truncation
    fast, slow = TruncatingTokenizer(tokenizer, max_len), TruncatingTokenizer(SlowTokenizer(tokenizer), max_len)
    assert fast.backend is not None and slow.backend is None
    assert fast.plain_ascii is not None  # BERT's normalizer: printable ASCII is lower-cased in Python
    for tokenize in fast, slow:
        ids, offsets = tokenize(texts)
        assert [ids[a:b].tolist() for a, b in itertools.pairwise(offsets)] == expected
    TruncatingTokenizer(tokenizer, 7)(["a b c d e f g h i j"])
    assert tokenizer.backend_tokenizer.truncation == shared_settings  # a private copy: the shared one is untouched


@given(
    limits=st.tuples(st.integers(1, 6), st.integers(1, 9)).filter(lambda limits: sum(limits) > 3),
    groups=st.lists(st.tuples(st.integers(0, 8), st.lists(st.integers(0, 12), max_size=4)), max_size=5),
)
@settings(max_examples=200, deadline=None)
@pytest.mark.slow
def test_pairs_assembled_at_once_equal_pairs_assembled_one_by_one(tokenizer, limits, groups):
    encoder = PairEncoder(tokenizer, *limits)
    word = "paris"  # one token
    queries = [" ".join([word] * q) for q, _ in groups]
    passages = [[("", " ".join([word] * p)) for p in group] for _, group in groups]
    encoded = encoder.encode_groups(queries, passages, pairs_per_call=3)
    expected = [
        encoder.join([PARIS] * min(q, limits[0]), [PARIS] * min(p, limits[1])) for q, group in groups for p in group
    ]
    assert [encoded[i] for i in range(len(encoded))] == expected
    assert all(len(ids) <= sum(limits) and ids[0] == CLS and ids[-1] == SEP for ids, _ in expected)
