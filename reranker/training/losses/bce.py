"""BCE: pointwise binary cross-entropy on each pair, the positive labelled 1 and the negatives 0 (monoBERT).

    loss = mean over groups and passages j of  BCE(sigmoid(s_j), y_j),   y_0 = 1, y_j = 0 for j >= 1

Inputs: student scores `s` (raw logits), (groups, group size), the positive in column 0; no teacher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_loss(student: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy with logits, averaged over every pair of every group.

    Example:
        >>> bce_loss(torch.tensor([[0.0, 0.0]]))  # both at probability 1/2: log 2
        tensor(0.6931)
    """
    labels = torch.zeros_like(student)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(student, labels)
