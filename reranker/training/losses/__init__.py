"""Training losses, one a file, each stating its inputs and formula; `RankingLoss` mixes them with weights.

Every loss takes the student's scores of shape (groups, group size), the positive in column 0, and the teacher's
scores of the same shape (None where the data has none) and returns a scalar:

| name | needs a teacher | what it is |
|---|---|---|
| `lce` | no | softmax cross-entropy, the positive as the target (the reference recipe) |
| `kl` | yes | T^2 * KL(softmax(teacher / T) || softmax(student / T)), `--distill_temperature T` |
| `margin_mse` | yes | MSE between the student's and the teacher's positive-minus-negative margins |
| `ranknet` | no | pairwise logistic loss over the pairs the teacher orders (without one: the positive first) |
| `bce` | no | pointwise binary cross-entropy, the positive 1 and the negatives 0 |
| `listnet` | no | cross-entropy of softmax(student) against softmax(teacher) (without one: of the labels) |
| `mse` | yes | MSE between the student's and the teacher's score of every passage (sentence-transformers' MiniLM) |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from reranker.io.errors import ParameterError, check_at_least, literal, parse_numbers
from reranker.training.losses.bce import bce_loss
from reranker.training.losses.kl import kl_loss
from reranker.training.losses.lce import lce_loss
from reranker.training.losses.listnet import listnet_loss
from reranker.training.losses.margin_mse import margin_mse_loss
from reranker.training.losses.mse import mse_loss
from reranker.training.losses.ranknet import ranknet_loss

LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "lce": lce_loss, "kl": kl_loss, "margin_mse": margin_mse_loss, "ranknet": ranknet_loss, "bce": bce_loss,
    "listnet": listnet_loss, "mse": mse_loss,
}  # fmt: skip
NEED_TEACHER = ("kl", "margin_mse", "mse")


def as_groups(logits: torch.Tensor, group_size: int) -> torch.Tensor:
    """Flat logits of consecutive groups as (groups, group size), in fp32 whatever their dtype. Reshaped by the
    actual number of groups: the reference used the configured batch size, which silently regrouped a final
    partial batch."""
    return logits.float().view(-1, group_size)


@dataclass(frozen=True)
class RankingLoss:
    """A weighted sum of named losses: `RankingLoss.parse("lce,kl", "1,0.5", temperature=2)`."""

    names: tuple[str, ...] = ("lce",)
    weights: tuple[float, ...] = (1.0,)
    temperature: float = 1.0

    @classmethod
    def parse(cls, names: str = "lce", weights: str | None = None, temperature: float = 1.0) -> RankingLoss:
        """From the `--loss` and `--loss_weights` strings (comma-separated; weights >= 0, 1 each by default)."""
        parsed = tuple(name.strip() for name in names.split(","))
        unknown = [name for name in parsed if name not in LOSSES]
        if unknown or not all(parsed):
            raise ParameterError(f"{{0}}: unknown loss {literal(repr(','.join(unknown) or names))}; choose from "
                                 f"{', '.join(LOSSES)}", "loss")  # fmt: skip
        if len(set(parsed)) != len(parsed):
            raise ParameterError(f"{{0}} names a loss twice: {literal(names)}", "loss")
        if weights is None:
            values = (1.0,) * len(parsed)
        else:
            values = parse_numbers("loss_weights", weights)
            for value in values:  # a negative weight would train the model to do worse on that loss
                check_at_least("loss_weights", value, 0)
            if len(values) != len(parsed):
                raise ParameterError(f"{{0}} gives {len(values)} weights for {len(parsed)} losses in {{1}}",
                                     "loss_weights", "loss")  # fmt: skip
        if temperature <= 0:
            raise ParameterError(f"{{0}} must be > 0, got {temperature}", "distill_temperature")
        return cls(parsed, values, temperature)

    def __str__(self) -> str:
        """E.g. `lce` or `1 * lce + 0.5 * kl (T=2)`."""
        parts = [f"{name} (T={self.temperature:g})" if name == "kl" else name for name in self.names]
        if self.weights == (1.0,):
            return parts[0]
        return " + ".join(f"{weight:g} * {part}" for weight, part in zip(self.weights, parts, strict=True))

    @property
    def needs_teacher(self) -> bool:
        return any(name in NEED_TEACHER for name in self.names)

    def __call__(self, student: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted sum over (groups, group size) scores; a loss that needs a teacher and gets none fails."""
        parts = []
        for name in self.names:
            if name in NEED_TEACHER and teacher is None:
                raise ParameterError(f"{{0}} {name} needs teacher scores, and this batch has none", "loss")
            loss = partial(kl_loss, temperature=self.temperature) if name == "kl" else LOSSES[name]
            parts.append(loss(student, teacher))
        if self.weights == (1.0,):
            return parts[0]  # the loss itself, bit for bit (the reference's LCE)
        return sum(weight * part for weight, part in zip(self.weights, parts, strict=True))
