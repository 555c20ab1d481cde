"""LCE: softmax cross-entropy over each group, the positive first (the reference recipe's loss).

    loss = mean over groups of  -log softmax(s)_0

Inputs: student scores `s` of shape (groups, group size), the positive in column 0; no teacher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lce_loss(student: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax cross-entropy with the positive (column 0) as the target, averaged over groups.

    Example:
        >>> lce_loss(torch.tensor([[2.0, 0.0]]))  # -log(e^2 / (e^2 + 1))
        tensor(0.1269)
    """
    target = torch.zeros(student.size(0), dtype=torch.long, device=student.device)
    return F.cross_entropy(student, target)
