"""Padding encoded pairs into batches, and the grouped collator used in training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    """Encodes a list of groups into one batch of `len(groups) * group_size` pairs, group by group.

    Pairs are padded to the longest pair of the batch (dynamic padding); `pad_to_max_length` pads every pair to
    q_max_len + p_max_len as the reference did (kept for benchmarks and comparisons).
    """

    encoder: PairEncoder
    pad_to_max_length: bool = False
    pad_to_multiple_of: int = 8

    def __call__(self, groups: list[TrainGroup]) -> dict[str, torch.Tensor]:
        queries = self.encoder.tokenize_queries([g.query for g in groups])
        titles = [title for g in groups for title, _ in g.passages]
        texts = [text for g in groups for _, text in g.passages]
        passages = iter(self.encoder.tokenize_passages(titles, texts))
        pairs = [
            self.encoder.join(query, next(passages))
            for query, group in zip(queries, groups, strict=True)
            for _ in group.passages
        ]
        encoder = self.encoder
        return pad_pairs(
            [ids for ids, _ in pairs],
            [types for _, types in pairs] if encoder.uses_token_types else None,
            encoder.tokenizer.pad_token_id,
            self.pad_to_multiple_of,
            encoder.q_max_len + encoder.p_max_len if self.pad_to_max_length else None,
        )
