"""The grouped collator used in training: one step's groups encoded and padded into batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reranker.inference.scoring import padded_lengths
from reranker.io.errors import check_at_least
from reranker.model.pair_encoding import EncodedPairs, GroupEncoder
from reranker.training.dataset import TrainGroup


@dataclass
class GroupedTrainCollator:
    """Encodes a list of groups into the `len(groups) * group_size` pairs of one step, group by group.

    With `length_buckets` = 1 the pairs form one batch padded to its longest pair. Random groups nearly always
    hold a passage of full length, so that saves little; with `length_buckets` = K > 1 the pairs are sorted by
    length and cut into K sub-batches, each padded to its own longest pair (`{"buckets": [...], "restore": ...}`,
    `restore` putting the sorted logits back in group order), which cuts the padded tokens by about a third.
    `pad_to_max_length` pads every pair to the longest a pair can be (q_max_len + p_max_len, plus a decoder's
    prompt) as the reference did (for comparisons).
    `pairs_per_forward` caps the pairs of a sub-batch, and its padded tokens at those of that many pairs of the
    step's mean length (the step is then run with gradient caching). Groups with
    teacher scores add them as `teacher_scores`, in group order.
    """

    encoder: GroupEncoder
    pad_to_max_length: bool = False
    pad_to_multiple_of: int = 8
    length_buckets: int = 1
    pairs_per_forward: int | None = None

    def __post_init__(self) -> None:
        check_at_least("length_buckets", self.length_buckets, 1)
        check_at_least("pairs_per_forward", self.pairs_per_forward, 1)

    def __call__(self, groups: list[TrainGroup]) -> dict:
        encoded = self.encoder.encode_groups([g.query for g in groups], [g.passages for g in groups],
                                             instructions=[g.instruction for g in groups])  # fmt: skip
        batch = self._batches(encoded)
        if all(group.scores is not None for group in groups):
            batch["teacher_scores"] = torch.tensor([s for group in groups for s in group.scores], dtype=torch.float32)
        return batch

    def _batches(self, encoded: EncodedPairs) -> dict:
        """One batch, or sub-batches (`buckets`) with the permutation that puts their logits back in group order:
        `length_buckets` of them, or those `pairs_per_forward` allows (for gradient caching)."""
        padded = self._padded(encoded)
        if self.pairs_per_forward:
            order = np.arange(len(encoded)) if self.pad_to_max_length else np.argsort(-encoded.lengths, kind="stable")
            parts = self._capped_parts(padded[order])
        elif self.length_buckets > 1 and not self.pad_to_max_length:
            order = np.argsort(-encoded.lengths, kind="stable")
            parts = self.length_buckets
        else:
            return self._pad(encoded, np.arange(len(encoded)), padded)
        buckets = [self._pad(encoded, part, padded) for part in np.array_split(order, parts) if len(part)]
        return {"buckets": buckets, "restore": torch.from_numpy(np.argsort(order))}

    def _capped_parts(self, lengths: np.ndarray) -> list[int]:
        """Where to cut pairs sorted longest first: at most `pairs_per_forward` pairs a sub-batch, and at most the
        padded tokens of `pairs_per_forward` pairs of the step's mean length (a forward's memory grows with its
        tokens and, through attention, with its longest pair: fewer long pairs go together than short ones)."""
        budget = self.pairs_per_forward * float(lengths.mean())
        cuts, start = [], 0
        while start < len(lengths):
            size = min(self.pairs_per_forward, max(1, int(budget // lengths[start])), len(lengths) - start)
            start += size
            cuts.append(start)
        return cuts[:-1]

    def _padded(self, encoded: EncodedPairs) -> np.ndarray:
        if self.pad_to_max_length:  # a decoder's prompt may re-tokenize a cut text a token longer: never cut a pair
            return np.maximum(self.encoder.longest_pair, encoded.lengths)
        return padded_lengths(encoded.lengths, self.pad_to_multiple_of)

    def _pad(self, encoded: EncodedPairs, index: np.ndarray, padded: np.ndarray) -> dict[str, torch.Tensor]:
        length = int(padded[index].max())
        return encoded.padded_batch(index, length, self.encoder.pad_token_id)
