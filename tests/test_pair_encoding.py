import pytest

from reranker.pair_encoding import PairEncoder, PairTemplate, passage_text

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
