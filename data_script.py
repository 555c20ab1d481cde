"""The rerank input schema and loader (the reference's `--dataset_name data_script.py`).

`datasets` >= 4 no longer runs loading scripts, so this file is a plain module: `reranker_inference.py
--dataset_name data_script.py --encode_in_path F` reads F with the checked streaming reader of
`reranker.rerank_input`; `load_rerank_dataset(F)` gives a `datasets.Dataset` with the schema `rerank_features()`.
Run as a script, it validates a rerank input file and prints its counts: `python data_script.py F`.
"""

import sys

from reranker.cli.validate import main
from reranker.io.rerank_input import load_rerank_dataset, rerank_features

__all__ = ["load_rerank_dataset", "rerank_features"]

if __name__ == "__main__":
    sys.exit(main())
