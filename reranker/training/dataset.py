"""The training dataset of query groups and the per-epoch sampler that feeds it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch.utils.data import Dataset, Sampler

from reranker.io.errors import InputError
from reranker.io.train_rows import check_train_row
from reranker.training.grouping import check_group_size, group_rng, sample_group


class TrainGroup(NamedTuple):
    """One query and its passages as (title, text) pairs, the positive first, with the teacher's scores of the
    passages if the data has them, and the query's own task instruction (None: the model's)."""

    query: str
    passages: list[tuple[str, str]]
    scores: list[float] | None = None
    instruction: str | None = None


class GroupedTrainDataset(Dataset):
    """Map-style dataset over training rows; item `(epoch, index)` is the group of row `index` in that epoch."""

    def __init__(
        self,
        rows,
        group_size: int,
        seed: int,
        positive_no_shuffle: bool = False,
        negative_no_shuffle: bool = False,
        source: str = "<train data>",
    ) -> None:
        check_group_size(group_size)
        self.rows = rows
        self.group_size = group_size
        self.seed = seed
        self.positive_no_shuffle = positive_no_shuffle
        self.negative_no_shuffle = negative_no_shuffle
        self.source = source

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: tuple[int, int] | int) -> TrainGroup:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        # Hub rows are not checked when loaded; the error then names the row
        row = check_train_row(self.rows[index], self.source, index + 1)
        positives, negatives = row["positive_passages"], row["negative_passages"]
        try:
            pos, negs = sample_group(
                len(positives),
                len(negatives),
                self.group_size,
                group_rng(self.seed, epoch, index),
                self.positive_no_shuffle,
                self.negative_no_shuffle,
            )
        except ValueError as err:
            raise InputError(self.source, index + 1, str(err)) from None
        chosen = [positives[pos], *(negatives[i] for i in negs)]
        scores = [p["score"] for p in chosen] if chosen[0]["score"] is not None else None
        return TrainGroup(row["query"], [(p["title"], p["text"]) for p in chosen], scores, row["instruction"])


class EpochShuffleSampler(Sampler):
    """Yields `(epoch, index)` for a fresh permutation each epoch, seeded by `seed + epoch`.

    Carrying the epoch in the key lets dataloader workers (copies of the dataset) draw that epoch's groups.
    The Trainer calls `set_epoch` before each epoch, also when it resumes mid-epoch.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        for index in torch.randperm(self.size, generator=generator).tolist():
            yield self.epoch, index
