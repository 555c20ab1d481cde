"""Margin-MSE: each negative's margin to the positive, student against teacher (Hofstätter et al., 2020).

    loss = mean over groups and negatives j >= 1 of  ((s_0 - s_j) - (t_0 - t_j))^2

Inputs: student scores `s` and teacher scores `t`, both (groups, group size), the positive in column 0.
"""

from __future__ import annotations

import torch


def margin_mse_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the student's and the teacher's positive-minus-negative margins.

    Example:
        >>> margin_mse_loss(torch.tensor([[3.0, 1.0]]), torch.tensor([[2.0, 1.0]]))  # (2 - 1)^2
        tensor(1.)
    """
    student_margins = student[:, :1] - student[:, 1:]
    teacher_margins = teacher[:, :1] - teacher[:, 1:]
    return (student_margins - teacher_margins).pow(2).mean()
