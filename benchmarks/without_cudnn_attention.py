"""Run a script with PyTorch's SDPA kept off its cuDNN kernel, which builds an execution plan per input shape.

python benchmarks/without_cudnn_attention.py SCRIPT [ARGS...]
"""

import runpy
import sys

import torch

if __name__ == "__main__":
    torch.backends.cuda.enable_cudnn_sdp(False)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
