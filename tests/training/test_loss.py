import math

import pytest
import torch

from reranker.training.losses.lce import grouped_softmax_loss


def reference_lce(groups):
    """-log softmax(positive) averaged over groups, computed by hand."""
    return sum(-(g[0] - math.log(sum(math.exp(x) for x in g))) for g in groups) / len(groups)


def test_loss_on_full_batch():
    groups = [[2.0, 1.0, 0.0, -1.0], [0.5, 0.5, 0.5, 0.5]]
    loss = grouped_softmax_loss(torch.tensor(sum(groups, [])).unsqueeze(1), group_size=4)
    assert loss.item() == pytest.approx(reference_lce(groups), rel=1e-6)
    assert loss.item() == pytest.approx((0.44018969856119544 + math.log(4)) / 2, rel=1e-6)


def test_partial_batch_is_grouped_by_the_actual_number_of_groups():
    # a final batch of 3 groups when 8 were configured: 3 x 4 logits, positives at 0, 4, 8
    groups = [[3.0, 0.0, 0.0, 0.0], [0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, -2.0]]
    logits = torch.tensor(sum(groups, [])).unsqueeze(1)
    loss = grouped_softmax_loss(logits, group_size=4)
    assert loss.item() == pytest.approx(reference_lce(groups), rel=1e-6)
    # the reference reshaped by the configured batch size, i.e. (8, k) here: a different, wrong loss
    wrong = torch.nn.functional.cross_entropy(logits.view(4, 3), torch.zeros(4, dtype=torch.long))
    assert abs(wrong.item() - loss.item()) > 0.1


def test_loss_is_computed_in_fp32_from_half_logits():
    logits = torch.tensor([[1.0], [0.0], [0.0], [0.0]], dtype=torch.bfloat16)
    loss = grouped_softmax_loss(logits, group_size=4)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference_lce([[1.0, 0.0, 0.0, 0.0]]), rel=1e-6)
