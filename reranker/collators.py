"""Padding encoded pairs into batches, and the grouped collator used in training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from reranker.pair_encoding import PairEncoder
from reranker.train_dataset import TrainGroup


def pad_pairs(
    input_ids: Sequence[Sequence[int]],
    token_type_ids: Sequence[Sequence[int]] | None,
    pad_token_id: int,
    pad_to_multiple_of: int = 8,
    fixed_length: int | None = None,
) -> dict[str, torch.Tensor]:
    """Right-pad pairs to the longest in the batch, rounded up to `pad_to_multiple_of` (or to `fixed_length`)."""
    longest = max(len(ids) for ids in input_ids)
    length = fixed_length or -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    if longest > length:
        raise ValueError(f"a pair of {longest} tokens does not fit the fixed length {length}")
    ids = torch.full((len(input_ids), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(input_ids), length), dtype=torch.long)
    types = torch.zeros((len(input_ids), length), dtype=torch.long)
    for row, seq in enumerate(input_ids):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
        if token_type_ids is not None:
            types[row, : len(seq)] = torch.tensor(token_type_ids[row], dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if token_type_ids is not None:
        batch["token_type_ids"] = types
    return batch


@dataclass
class GroupedTrainCollator:
    """Encodes a list of groups into the `len(groups) * group_size` pairs of one step, group by group.

    With `length_buckets` = 1 the pairs form one batch padded to its longest pair. Random groups nearly always
    hold a passage of full length, so that saves little; with `length_buckets` = K > 1 the pairs are sorted by
    length and cut into K sub-batches, each padded to its own longest pair (`{"buckets": [...], "restore": ...}`,
    `restore` putting the sorted logits back in group order), which cuts the padded tokens by about a third.
    `pad_to_max_length` pads every pair to q_max_len + p_max_len as the reference did (for comparisons).
    """

    encoder: PairEncoder
    pad_to_max_length: bool = False
    pad_to_multiple_of: int = 8
    length_buckets: int = 1

    def __call__(self, groups: list[TrainGroup]) -> dict:
        encoded = self.encoder.encode_groups([g.query for g in groups], [g.passages for g in groups])
        pairs = [encoded[i] for i in range(len(encoded))]
        if self.pad_to_max_length or self.length_buckets == 1:
            return self._pad(pairs)
        order = np.argsort([-len(ids) for ids, _ in pairs], kind="stable")
        buckets = [
            self._pad([pairs[i] for i in part]) for part in np.array_split(order, self.length_buckets) if len(part)
        ]
        return {"buckets": buckets, "restore": torch.from_numpy(np.argsort(order))}

    def _pad(self, pairs: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        encoder = self.encoder
        return pad_pairs(
            [ids for ids, _ in pairs],
            [types for _, types in pairs] if encoder.uses_token_types else None,
            encoder.tokenizer.pad_token_id,
            self.pad_to_multiple_of,
            encoder.q_max_len + encoder.p_max_len if self.pad_to_max_length else None,
        )
