"""RankNet: pairwise logistic loss over the ordered pairs of each group (Burges et al., 2005).

    loss = mean over pairs (i, j) with  t_i > t_j  of  log(1 + exp(-(s_i - s_j)))

Inputs: student scores `s`, (groups, group size); the order comes from the teacher's scores `t` when given
(pairs the teacher ties are left out), else from the labels: the positive (column 0) above every negative.
A batch whose teacher ties every pair orders nothing: its loss is 0 (with zero gradients), not the empty mean's NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ranknet_loss(student: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
    """Mean logistic loss of the student's score differences over the pairs the teacher (or the label) orders.

    Example:
        >>> ranknet_loss(torch.tensor([[1.0, 1.0]]))  # positive and negative tied: log 2
        tensor(0.6931)
    """
    if teacher is None:
        teacher = torch.zeros_like(student)
        teacher[:, 0] = 1.0
    above = teacher.unsqueeze(2) > teacher.unsqueeze(1)  # above[g, i, j]: i should rank above j
    differences = student.unsqueeze(2) - student.unsqueeze(1)
    pair_losses = F.softplus(-differences[above])
    return pair_losses.sum() / max(pair_losses.numel(), 1)  # no ordered pair: 0, where .mean() gives NaN
