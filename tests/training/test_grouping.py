import pytest

from reranker.io.errors import InputError
from reranker.training.dataset import EpochShuffleSampler, GroupedTrainDataset
from reranker.training.grouping import group_rng, sample_group


def row(n_pos, n_neg, query="q"):
    return {
        "query_id": "1",
        "query": query,
        "positive_passages": [{"docid": f"p{i}", "title": "", "text": f"pos {i}"} for i in range(n_pos)],
        "negative_passages": [{"docid": f"n{i}", "title": "", "text": f"neg {i}"} for i in range(n_neg)],
    }


def test_negatives_without_replacement_when_enough():
    for index in range(50):
        pos, negs = sample_group(3, 30, 8, group_rng(42, 0, index))
        assert 0 <= pos < 3
        assert len(negs) == 7 and len(set(negs)) == 7 and all(0 <= n < 30 for n in negs)


def test_negatives_with_replacement_only_when_too_few():
    pos, negs = sample_group(1, 3, 8, group_rng(42, 0, 0))
    assert pos == 0 and len(negs) == 7 and set(negs) <= {0, 1, 2}
    assert len(set(negs)) < len(negs)  # 7 draws from 3 must repeat
    _, exact = sample_group(1, 7, 8, group_rng(42, 0, 0))
    assert sorted(exact) == list(range(7))  # exactly enough: each once


def test_deterministic_per_seed_epoch_and_index():
    draw = lambda seed, epoch, index: sample_group(5, 30, 8, group_rng(seed, epoch, index))  # noqa: E731
    assert draw(42, 0, 3) == draw(42, 0, 3)
    assert draw(42, 1, 3) != draw(42, 0, 3)
    assert draw(43, 0, 3) != draw(42, 0, 3)
    assert draw(42, 0, 4) != draw(42, 0, 3)


def test_no_shuffle_flags_take_the_first_passages():
    pos, negs = sample_group(5, 30, 8, group_rng(1, 2, 3), positive_no_shuffle=True, negative_no_shuffle=True)
    assert pos == 0 and negs == list(range(7))


def test_dataset_group_order_positive_first():
    dataset = GroupedTrainDataset([row(1, 30, "what"), row(2, 2)], group_size=4, seed=42)
    group = dataset[(0, 0)]
    assert group.query == "what"
    assert group.passages[0] == ("", "pos 0")
    assert len(group.passages) == 4 and all(text.startswith("neg") for _, text in group.passages[1:])
    assert len({text for _, text in group.passages[1:]}) == 3
    assert dataset[(0, 0)] == group and dataset[(1, 0)] != group


def test_dataset_rejects_rows_without_negatives_and_tiny_groups():
    with pytest.raises(ValueError, match="train_n_passages must be >= 2"):
        GroupedTrainDataset([row(1, 3)], group_size=1, seed=0)
    bad = row(1, 3)
    bad["negative_passages"] = []
    with pytest.raises(InputError, match="has no negative passage"):
        GroupedTrainDataset([bad], group_size=2, seed=0, source="train.jsonl")[(0, 0)]


def test_sampler_permutes_each_epoch_deterministically():
    sampler = EpochShuffleSampler(10, seed=42)
    first = list(sampler)
    assert sorted(i for _, i in first) == list(range(10)) and {e for e, _ in first} == {0}
    assert list(EpochShuffleSampler(10, seed=42)) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert {e for e, _ in second} == {1} and [i for _, i in second] != [i for _, i in first]
