"""Each loss against a value computed by hand on a small tensor, and the mixing of losses."""

import doctest
import math

import pytest
import torch

from reranker.io.errors import ParameterError
from reranker.training import losses
from reranker.training.arguments import RerankerTrainingArguments
from reranker.training.losses import RankingLoss, as_groups
from reranker.training.losses.bce import bce_loss
from reranker.training.losses.kl import kl_loss
from reranker.training.losses.lce import lce_loss
from reranker.training.losses.listnet import listnet_loss
from reranker.training.losses.margin_mse import margin_mse_loss
from reranker.training.losses.mse import mse_loss
from reranker.training.losses.ranknet import ranknet_loss

STUDENT = [[2.0, 1.0, 0.0, -1.0], [0.5, 0.5, 0.5, 0.5]]
TEACHER = [[1.0, 3.0, 0.0, 0.0], [2.0, 0.0, 1.0, -1.0]]


def softmax(row, t=1.0):
    total = sum(math.exp(x / t) for x in row)
    return [math.exp(x / t) / total for x in row]


def mean(values):
    values = list(values)
    return sum(values) / len(values)


def hand_lce(groups):
    return mean(-math.log(softmax(g)[0]) for g in groups)


def hand_kl(student, teacher, t):
    def kl(p_row, q_row):
        return sum(p * (math.log(p) - math.log(q)) for p, q in zip(p_row, q_row, strict=True))

    return t * t * mean(kl(softmax(tg, t), softmax(sg, t)) for sg, tg in zip(student, teacher, strict=True))


def hand_margin_mse(student, teacher):
    return mean(((s[0] - s[j]) - (t[0] - t[j])) ** 2 for s, t in zip(student, teacher, strict=True)
                for j in range(1, len(s)))  # fmt: skip


def hand_mse(student, teacher):
    return mean((s[j] - t[j]) ** 2 for s, t in zip(student, teacher, strict=True) for j in range(len(s)))


def hand_ranknet(student, teacher):
    return mean(math.log(1 + math.exp(-(s[i] - s[j]))) for s, t in zip(student, teacher, strict=True)
                for i in range(len(s)) for j in range(len(s)) if t[i] > t[j])  # fmt: skip


def hand_bce(student):
    def bce(x, y):
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    return mean(bce(x, 1.0 if j == 0 else 0.0) for g in student for j, x in enumerate(g))


def hand_listnet(student, targets):
    return mean(-sum(p * math.log(q) for p, q in zip(softmax(y), softmax(s), strict=True))
                for s, y in zip(student, targets, strict=True))  # fmt: skip


LABELS = [[1.0, 0.0, 0.0, 0.0]] * 2
CASES = {
    "lce": (lambda s, t: lce_loss(s), hand_lce(STUDENT)),
    "kl T=1": (lambda s, t: kl_loss(s, t), hand_kl(STUDENT, TEACHER, 1.0)),
    "kl T=3": (lambda s, t: kl_loss(s, t, temperature=3.0), hand_kl(STUDENT, TEACHER, 3.0)),
    "margin_mse": (margin_mse_loss, hand_margin_mse(STUDENT, TEACHER)),
    "mse": (mse_loss, hand_mse(STUDENT, TEACHER)),
    "ranknet by teacher": (ranknet_loss, hand_ranknet(STUDENT, TEACHER)),
    "ranknet by label": (lambda s, t: ranknet_loss(s), hand_ranknet(STUDENT, LABELS)),
    "bce": (lambda s, t: bce_loss(s), hand_bce(STUDENT)),
    "listnet by teacher": (listnet_loss, hand_listnet(STUDENT, TEACHER)),
    "listnet by label": (lambda s, t: listnet_loss(s), hand_listnet(STUDENT, LABELS)),
}


@pytest.mark.parametrize("name", CASES)
def test_loss_equals_the_value_computed_by_hand(name):
    loss, expected = CASES[name]
    value = loss(torch.tensor(STUDENT), torch.tensor(TEACHER))
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_known_values():
    assert lce_loss(torch.tensor(STUDENT)).item() == pytest.approx((0.44018969856119544 + math.log(4)) / 2, rel=1e-6)
    assert margin_mse_loss(torch.tensor([[3.0, 1.0]]), torch.tensor([[2.0, 1.0]])).item() == 1.0
    # mse: every passage's own score against the teacher's, positive and negatives alike, averaged over all 6 pairs
    student = torch.tensor([[3.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert mse_loss(student, torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0]])).item() == pytest.approx((1 + 1 + 4) / 6)
    # ranknet leaves out the pair the teacher ties, (1, 2): (0, 1) at a margin of 0, (0, 2) at -4
    assert ranknet_loss(torch.tensor([[1.0, 1.0, 5.0]]), torch.tensor([[2.0, 1.0, 1.0]])).item() == pytest.approx(
        (math.log(2) + math.log(1 + math.exp(4))) / 2
    )


def test_docstring_examples_hold():
    for module in (losses.lce, losses.kl, losses.margin_mse, losses.ranknet, losses.bce, losses.listnet, losses.mse):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_mix_is_the_weighted_sum_and_lce_alone_is_bit_for_bit():
    student, teacher = torch.tensor(STUDENT), torch.tensor(TEACHER)
    mixed = RankingLoss.parse("lce,kl", "1,0.5", temperature=2.0)(student, teacher)
    assert mixed.item() == pytest.approx(hand_lce(STUDENT) + 0.5 * hand_kl(STUDENT, TEACHER, 2.0), rel=1e-6)
    assert torch.equal(RankingLoss.parse("lce")(student, None), lce_loss(student))
    assert RankingLoss.parse("kl,margin_mse").needs_teacher and not RankingLoss.parse("lce,bce,listnet").needs_teacher
    assert RankingLoss.parse("mse").needs_teacher


def test_mse_mixes_with_weights():
    student, teacher = torch.tensor(STUDENT), torch.tensor(TEACHER)
    mixed = RankingLoss.parse("lce,mse", "1,0.25")(student, teacher)
    assert mixed.item() == pytest.approx(hand_lce(STUDENT) + 0.25 * hand_mse(STUDENT, TEACHER), rel=1e-6)
    assert str(RankingLoss.parse("lce,mse", "1,0.25")) == "1 * lce + 0.25 * mse"


def test_ranknet_with_a_teacher_that_ties_every_pair_is_zero_not_nan():
    student = torch.tensor(STUDENT, requires_grad=True)
    tied = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-2.0, -2.0, -2.0, -2.0]])
    loss = ranknet_loss(student, tied)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(student.grad, torch.zeros_like(student))
    # mixed with another loss, the batch still trains on that one instead of turning every weight into NaN
    student.grad = None
    mixed = RankingLoss.parse("lce,ranknet")(student, tied)
    mixed.backward()
    assert mixed.item() == pytest.approx(hand_lce(STUDENT), rel=1e-6) and torch.isfinite(student.grad).all()


def test_partial_batch_is_grouped_by_the_actual_number_of_groups():
    # a final batch of 3 groups when 8 were configured: 3 x 4 logits, positives at 0, 4, 8
    groups = [[3.0, 0.0, 0.0, 0.0], [0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, -2.0]]
    logits = torch.tensor(sum(groups, [])).unsqueeze(1)
    loss = lce_loss(as_groups(logits, 4))
    assert loss.item() == pytest.approx(hand_lce(groups), rel=1e-6)
    # the reference reshaped by the configured batch size, i.e. (8, k) here: a different, wrong loss
    wrong = torch.nn.functional.cross_entropy(logits.view(4, 3), torch.zeros(4, dtype=torch.long))
    assert abs(wrong.item() - loss.item()) > 0.1


def test_loss_is_computed_in_fp32_from_half_logits():
    groups = as_groups(torch.tensor([[1.0], [0.0], [0.0], [0.0]], dtype=torch.bfloat16), 4)
    assert groups.dtype == torch.float32
    assert lce_loss(groups).item() == pytest.approx(hand_lce([[1.0, 0.0, 0.0, 0.0]]), rel=1e-6)


@pytest.mark.parametrize(
    "names, weights, temperature, message",
    [
        (
            "lce,kld",
            None,
            1.0,
            "loss: unknown loss 'kld'; choose from lce, kl, margin_mse, ranknet, bce, listnet, mse",
        ),
        ("lce,lce", None, 1.0, "loss names a loss twice"),
        ("lce,kl", "1", 1.0, "loss_weights gives 1 weights for 2 losses in loss"),
        ("lce", "one", 1.0, "loss_weights must be numbers, got 'one'"),
        ("kl", None, 0.0, "distill_temperature must be > 0, got 0.0"),
        ("lce,kl", "1,-0.5", 1.0, "loss_weights must be >= 0, got -0.5"),
        ("lce,kl", "1,nan", 1.0, "loss_weights must be finite numbers, got '1,nan'"),
        ("lce", "inf", 1.0, "loss_weights must be finite numbers, got 'inf'"),
        ("lce,kl", "-inf,1", 1.0, "loss_weights must be finite numbers, got '-inf,1'"),
    ],
)
def test_bad_loss_settings_name_the_parameter(names, weights, temperature, message):
    with pytest.raises(ParameterError, match=message):
        RankingLoss.parse(names, weights, temperature)


def test_negative_loss_weight_is_the_one_line_flag_error():
    with pytest.raises(ParameterError) as error:
        RerankerTrainingArguments(output_dir="x", loss="lce,kl", loss_weights="1,-0.5")
    assert error.value.as_flags() == "--loss_weights must be >= 0, got -0.5"
    assert RankingLoss.parse("lce,kl", "1,0").weights == (1.0, 0.0)  # 0 switches a loss off: allowed


@pytest.mark.parametrize("name", ["kl", "mse"])
def test_a_teacher_loss_without_teacher_scores_fails(name):
    with pytest.raises(ParameterError, match=f"loss {name} needs teacher scores"):
        RankingLoss.parse(f"lce,{name}")(torch.tensor(STUDENT), None)
