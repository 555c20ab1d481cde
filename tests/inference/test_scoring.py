import numpy as np
import torch

from reranker.inference.scoring import PairScorer, padded_lengths, same_length_batches
from reranker.model.loading import load_cross_encoder
from reranker.model.pair_encoding import EncodedPairs, PairEncoder
from reranker.training.dataset import TrainGroup

GROUPS = [
    TrainGroup("what is the capital of france", [("", "paris is the capital"), ("", "berlin"), ("", "a b c d e")]),
    TrainGroup("cat", [("Cats", "cats are animals that purr"), ("", "dogs bark"), ("", "x")]),
]


def test_same_length_batches_cover_every_index_once():
    lengths = [5, 30, 12, 30, 7, 144, 9, 30, 30, 5]
    batches = [b.tolist() for b in same_length_batches(lengths, batch_size=3)]
    assert batches == [[5], [1, 3, 7], [8], [2], [6], [4], [0, 9]]
    by_tokens = [b.tolist() for b in same_length_batches(lengths, batch_size=100, max_tokens=65)]
    assert by_tokens == [[5], [1, 3], [7, 8], [2], [6], [4], [0, 9]]  # 144 > 65: alone; 30-token pairs: 2 a batch
    by_multiple_of_8 = [b.tolist() for b in same_length_batches(padded_lengths(lengths, 8), batch_size=3)]
    assert by_multiple_of_8 == [[5], [1, 3, 7], [8], [2, 6], [0, 4, 9]]  # 144 | 32: 30 | 16: 12, 9 | 8: 5, 7, 5
    by_padded_tokens = [
        b.tolist() for b in same_length_batches(padded_lengths(lengths, 8), batch_size=100, max_tokens=70)
    ]
    assert by_padded_tokens == [[5], [1, 3], [7, 8], [2, 6], [0, 4, 9]]  # 32-token rows: 2 a batch


def test_lengths_with_few_pairs_share_batches_with_their_neighbours():
    lengths = [5, 30, 12, 30, 7, 144, 9, 30, 30, 5]
    batches = [b.tolist() for b in same_length_batches(lengths, batch_size=100, min_pairs=3)]
    assert batches == [[5], [1, 3, 7, 8], [2, 6, 4], [0, 9]]  # 144 | 30 x 4 alone | 12, 9, 7 | 5, 5 (the rest)
    capped = [b.tolist() for b in same_length_batches(lengths, batch_size=2, max_tokens=40, min_pairs=3)]
    assert capped == [[5], [1], [3], [7], [8], [2, 6], [4], [0, 9]]  # 40 tokens: one 30-token pair, three of 12


def scored_groups(tokenizer, model_dir, **settings) -> tuple[PairScorer, np.ndarray]:
    """A CPU `PairScorer` with `settings` and its scores of GROUPS' pairs."""
    scorer = PairScorer(load_cross_encoder(str(model_dir)), PairEncoder(tokenizer, 16, 128), torch.device("cpu"),
                        **settings)  # fmt: skip
    pairs = [(g.query, title, text) for g in GROUPS for title, text in g.passages]
    return scorer, scorer.score_pairs(*zip(*pairs, strict=True))


def test_small_lengths_batched_together_keep_the_scores(tokenizer, tiny_model_dir):
    _, exact = scored_groups(tokenizer, tiny_model_dir, min_batch_pairs=1)
    merged, scores = scored_groups(tokenizer, tiny_model_dir)  # the CPU default: the 6 pairs in one batch
    assert merged.min_batch_pairs == 16
    np.testing.assert_allclose(scores, exact, atol=1e-5)


def test_padded_batch_pads_and_masks_only_when_needed():
    ids, types = [101, 7, 102, 101, 7, 8, 9, 102], [0, 0, 1, 0, 0, 1, 1, 1]
    pairs = EncodedPairs(np.array(ids, np.int32), np.array(types, np.int8), np.array([0, 3, 8]))
    padded = pairs.padded_batch(np.array([1, 0]), 8, pad_token_id=0)
    assert padded["input_ids"].tolist() == [[101, 7, 8, 9, 102, 0, 0, 0], [101, 7, 102, 0, 0, 0, 0, 0]]
    assert padded["token_type_ids"].tolist() == [[0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0]]
    assert padded["attention_mask"].tolist() == [[1] * 5 + [0] * 3, [1] * 3 + [0] * 5]
    exact = pairs.padded_batch(np.array([0]), 3, pad_token_id=0)
    assert exact["input_ids"].tolist() == [[101, 7, 102]] and "attention_mask" not in exact


def test_padding_to_a_multiple_of_8_keeps_the_scores(tokenizer, tiny_model_dir):
    _, exact = scored_groups(tokenizer, tiny_model_dir, batch_size=4, min_batch_pairs=1)
    scorer, padded = scored_groups(tokenizer, tiny_model_dir, batch_size=4, pad_to_multiple_of=8, min_batch_pairs=1)
    assert scorer.pad_to_multiple_of == 8 and len(set(padded.tolist())) == 6
    np.testing.assert_allclose(padded, exact, atol=1e-5)


def test_sorted_batched_scores_equal_one_by_one_scores(tokenizer, tiny_model_dir):
    model = load_cross_encoder(str(tiny_model_dir))
    scorer = PairScorer(model, PairEncoder(tokenizer, 16, 128), torch.device("cpu"), batch_size=4)
    queries = ["what is the capital of france"] * 3 + ["cat"] * 3
    titles = [title for g in GROUPS for title, _ in g.passages]
    texts = [text for g in GROUPS for _, text in g.passages]
    batched = scorer.score_pairs(queries, titles, texts)
    single = np.array([scorer.score_pairs([q], [t], [x])[0] for q, t, x in zip(queries, titles, texts, strict=True)])
    assert batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_real_minilm_scores_match_a_plain_transformers_forward(tokenizer, minilm_path):
    """Our encoding + scorer on the real pretrained weights equals HF's own pair encoding and forward."""
    torch.manual_seed(0)  # the classification head is new: fix its initialisation
    model = load_cross_encoder(minilm_path).eval()
    pairs = [
        ("what is the capital of france", "Paris is the capital and largest city of France."),
        ("how many legs does a spider have", "Spiders have eight legs and two body segments."),
        (
            "ludacris net worth",
            "Ludacris net worth: Award winning rapper and actor Ludacris has a net worth of $25 million.",
        ),
    ]
    scorer = PairScorer(model, PairEncoder(tokenizer, 16, 128), torch.device("cpu"), batch_size=2)
    ours = scorer.score_pairs([q for q, _ in pairs], ["", "", ""], [p for _, p in pairs])
    with torch.no_grad():
        expected = [model(**tokenizer(q, p, return_tensors="pt")).logits[0, 0].item() for q, p in pairs]
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert len(set(ours.tolist())) == 3


def test_bf16_scores_come_from_an_fp32_head(tokenizer, tiny_model_dir):
    """bf16-rounded scores tie within a query and fall back to input order; the head runs in fp32 instead."""
    model = load_cross_encoder(str(tiny_model_dir))
    keys = list(model.state_dict())
    encoder = PairEncoder(tokenizer, 16, 128)
    queries = ["what is the capital of france"] * 3 + ["cat"] * 3
    titles = [title for g in GROUPS for title, _ in g.passages]
    texts = [text for g in GROUPS for _, text in g.passages]
    fp32 = PairScorer(model, encoder, torch.device("cpu")).score_pairs(queries, titles, texts)
    bf16 = PairScorer(model, encoder, torch.device("cpu"), torch.bfloat16).score_pairs(queries, titles, texts)
    PairScorer(model, encoder, torch.device("cpu"), torch.bfloat16)  # wrapping again changes nothing
    assert getattr(model.classifier.forward, "runs_in_fp32", False)
    assert not getattr(model.classifier.forward.__wrapped__, "runs_in_fp32", False)
    assert list(model.state_dict()) == keys
    rounded = torch.from_numpy(bf16).to(torch.bfloat16).float().numpy()
    assert (rounded != bf16).sum() >= 5  # not bf16 values
    np.testing.assert_allclose(bf16, fp32, atol=0.05)
    with torch.autocast("cpu", torch.bfloat16):
        assert model.classifier(torch.ones(1, 128)).dtype == torch.float32
