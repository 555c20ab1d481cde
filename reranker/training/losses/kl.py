"""KL: listwise distillation, the student's distribution over a group matched to the teacher's.

    loss = T^2 * mean over groups of  KL( softmax(t / T) || softmax(s / T) )
         = T^2 * mean over groups of  sum_j p_j (log p_j - log q_j),   p = softmax(t / T), q = softmax(s / T)

Inputs: student scores `s` and teacher scores `t`, both (groups, group size); temperature `T` > 0. The T^2
keeps the gradient's scale independent of T (Hinton et al., 2015).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Temperature-scaled listwise KL divergence from the teacher's softmax to the student's.

    Example:
        >>> kl_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))  # same distribution
        tensor(0.)
    """
    log_q = F.log_softmax(student / temperature, dim=-1)
    log_p = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean") * temperature**2
