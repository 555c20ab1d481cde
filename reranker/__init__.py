"""Train and run BERT cross-encoder rerankers on MS MARCO passage ranking.

`from reranker import Reranker, train`: see `reranker.api`. Both are imported on first use, so that the command
line's `--help` and the light stages do not pay for torch.
"""

__version__ = "0.1.0"
__all__ = ["Reranker", "train", "__version__"]


def __getattr__(name: str):
    if name in ("Reranker", "train"):
        from reranker import api

        return getattr(api, name)
    raise AttributeError(f"module 'reranker' has no attribute {name!r}")
