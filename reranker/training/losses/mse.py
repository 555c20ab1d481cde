"""MSE: pointwise distillation, the student's logit regressed onto the teacher's score for every passage.

    loss = mean over groups and passages j of  (s_j - t_j)^2

Inputs: student scores `s` (raw logits) and teacher scores `t`, both (groups, group size). As sentence-transformers
trained cross-encoder/ms-marco-MiniLM-L6-v2 (examples/training/ms_marco/train_cross-encoder_kd.py: one label,
`torch.nn.MSELoss()` averaged over the pairs of a batch, onto the logits of Hofstätter et al.'s teacher ensemble).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the student's and the teacher's score of every passage of every group.

    Example:
        >>> mse_loss(torch.tensor([[3.0, 1.0]]), torch.tensor([[2.0, 1.0]]))  # ((3 - 2)^2 + 0^2) / 2
        tensor(0.5000)
    """
    return F.mse_loss(student, teacher)
