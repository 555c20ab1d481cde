"""Gradient caching: the loss of a whole step's groups, with the memory of `pairs_per_forward` pairs at a time.

Large groups (32 passages and more) make a step's pairs too many to run through the model at once. Following
GradCache (Gao et al., 2021): (1) score every sub-batch without building a graph; (2) compute the loss on all the
scores and its gradient with respect to the scores; (3) run each sub-batch again with a graph and backpropagate
that gradient into the weights. The weights get the gradient of the one big batch (equal up to float rounding);
dropout draws the same masks in (1) and (3) because each sub-batch's random state is replayed, on every device
(nn.DataParallel's replicas draw from their own GPUs' generators). DDP all-reduces once, after the last sub-batch.
DeepSpeed and FSDP run the backward pass themselves, so RerankerTrainer refuses gradient caching with them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from reranker.inference.heap import release_freed_memory


def cuda_random_states() -> list[torch.Tensor]:
    """Every CUDA device's random state, or none before CUDA is initialised (nothing has drawn from a GPU's
    generator then). Every device, not only the model's: nn.DataParallel runs a replica on each GPU, and each
    replica draws its dropout masks from its own GPU's generator.

    Returns:
        The states, indexed by device (`torch.cuda.get_rng_state_all`).
    """
    return torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []


class RandomState:
    """Every device's random state at creation (the CPU's and each GPU's), to replay a forward pass's dropout
    masks."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = cuda_random_states()

    def restore(self) -> None:
        """Make this the random state of the CPU and of the GPUs it holds a state of."""
        torch.set_rng_state(self.cpu)
        if self.cuda:
            torch.cuda.set_rng_state_all(self.cuda)

    @contextlib.contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block with this random state; the state outside the block is left as it was."""
        outside = RandomState()  # captured as this one was, on the same devices
        self.restore()
        try:
            yield
        finally:
            outside.restore()


def cached_gradient_step(
    model: torch.nn.Module,
    buckets: list[dict[str, torch.Tensor]],
    restore: torch.Tensor,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    no_sync: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """Backpropagate `loss_of(logits)` through `model` one sub-batch at a time; return the loss (detached).

    Args:
        model: the cross-encoder, in training mode.
        buckets: the step's sub-batches (model inputs); their logits, concatenated and indexed by `restore`, are
            in group order.
        restore: the permutation from the concatenated sub-batches to group order.
        loss_of: the loss of the step's logits in group order, shape (pairs, 1); scale it for accumulation here.
        backward: how to backpropagate a scalar (the Trainer's accelerator, for fp16 loss scaling).
        no_sync: a context in which DDP does not all-reduce; every sub-batch but the last runs in it.

    Returns:
        The loss, as `loss_of` computed it.
    """
    device = next(model.parameters()).device
    states, outputs = [], []
    with torch.no_grad():
        for bucket in buckets:
            states.append(RandomState())
            outputs.append(model(**bucket).logits)
    logits = torch.cat(outputs)[restore].detach().requires_grad_()
    loss = loss_of(logits)
    (grad,) = torch.autograd.grad(loss, logits)
    in_bucket_order = torch.empty_like(grad)
    in_bucket_order[restore] = grad
    start = 0
    for number, (bucket, state) in enumerate(zip(buckets, states, strict=True)):
        size = len(next(iter(bucket.values())))
        last = number == len(buckets) - 1
        with state.replay(), contextlib.nullcontext() if last else no_sync():
            chunk = model(**bucket).logits
            # the surrogate's gradient with respect to `chunk` is the cached gradient
            backward((chunk * in_bucket_order[start : start + size].to(chunk.dtype)).sum())
        start += size
        if device.type == "cpu":
            release_freed_memory()  # each sub-batch's activations, freed, would otherwise stay in glibc's heap
    return loss.detach()
