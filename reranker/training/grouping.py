"""Choosing the passages of one training group: one positive, then `group_size - 1` negatives.

The reference draws from Python's global RNG at every fetch, so a group depends on everything drawn before it.
Here a group depends only on (seed, epoch, query index): the same seed gives the same groups, each epoch gives
new ones, and a resumed run sees exactly the groups an uninterrupted run would have seen.
"""

from __future__ import annotations

import numpy as np

from reranker.io.errors import ParameterError


def check_group_size(group_size: int) -> None:
    """A group is one positive and at least one negative."""
    if group_size < 2:
        raise ParameterError(f"{{0}} must be >= 2 (1 positive + negatives), got {group_size}", "train_n_passages")


def group_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one query in one epoch."""
    return np.random.default_rng([seed, epoch, index])


def sample_group(
    n_positives: int,
    n_negatives: int,
    group_size: int,
    rng: np.random.Generator,
    positive_no_shuffle: bool = False,
    negative_no_shuffle: bool = False,
) -> tuple[int, list[int]]:
    """Return (positive index, negative indices) for a group of `group_size` passages.

    The positive is drawn uniformly (or is the first with `positive_no_shuffle`). Negatives are drawn without
    replacement, or with replacement only when there are fewer than `group_size - 1` of them; with
    `negative_no_shuffle` the first ones are taken in order.
    """
    if n_positives < 1 or n_negatives < 1:
        raise ValueError(f"a group needs a positive and a negative, got {n_positives} and {n_negatives}")
    positive = 0 if positive_no_shuffle else int(rng.integers(n_positives))
    wanted = group_size - 1
    if n_negatives < wanted:
        negatives = rng.integers(n_negatives, size=wanted)
    elif negative_no_shuffle:
        negatives = np.arange(wanted)
    else:
        negatives = rng.choice(n_negatives, size=wanted, replace=False)
    return positive, [int(i) for i in negatives]
