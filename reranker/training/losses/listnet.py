"""ListNet: cross-entropy between the top-one distributions of the targets and of the student (Cao et al., 2007).

    loss = mean over groups of  -sum_j softmax(y)_j * log softmax(s)_j

Inputs: student scores `s`, (groups, group size); the targets `y` are the teacher's scores when given, else the
labels (the positive 1, the negatives 0), as sentence-transformers' ListNetLoss does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def listnet_loss(student: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the student's softmax against the softmax of the teacher's scores (or of the labels).

    Example:
        >>> listnet_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0]]))  # -log(1/2)
        tensor(0.6931)
    """
    if teacher is None:
        teacher = torch.zeros_like(student)
        teacher[:, 0] = 1.0
    return -(F.softmax(teacher, dim=-1) * F.log_softmax(student, dim=-1)).sum(dim=-1).mean()
