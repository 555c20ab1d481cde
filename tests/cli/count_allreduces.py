"""`torchrun ... -m tests.cli.count_allreduces COUNTS FLAGS...`: train_reranker.py FLAGS, with the gradient all-reduces
of every DDP model counted by a communication hook; each rank writes `{"buckets": ..., "rounds": ...}` to
COUNTS.RANK (a round: one all-reduce of every gradient bucket, ending with the bucket DDP marks as the last)."""

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from reranker.cli.train import main

COUNTS = {"buckets": 0, "rounds": 0}


# no `from __future__ import annotations`: DDP checks the hook's annotations against the classes themselves
def counting_allreduce(process_group, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP's own all-reduce (the mean over the ranks), counted."""
    COUNTS["buckets"] += 1
    COUNTS["rounds"] += bucket.is_last()
    return allreduce_hook(process_group, bucket)


def with_counter(ddp_init):
    """DistributedDataParallel's __init__, then the counting hook registered (before any backward, as DDP needs)."""

    def init(self, *args, **kwargs) -> None:
        ddp_init(self, *args, **kwargs)
        self.register_comm_hook(None, counting_allreduce)

    return init


if __name__ == "__main__":
    counts_path, *flags = sys.argv[1:]
    DistributedDataParallel.__init__ = with_counter(DistributedDataParallel.__init__)
    status = main(flags)
    with open(f"{counts_path}.{os.environ['RANK']}", "w") as counts:
        json.dump(COUNTS, counts)
    sys.exit(status)
