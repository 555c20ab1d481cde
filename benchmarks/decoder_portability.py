"""How far plain transformers, sentence-transformers' CrossEncoder(folder) and the seq-cls export are from
`Reranker.predict` (max |difference|) on 20 dev600 pairs, for tiny random decoders (Llama last_token, Qwen3 yes_no)
trained 2 LoRA steps and merged: the figures behind the tolerances of tests/training/test_decoder_portability.py,
whose helpers this reuses.

    HF_HUB_OFFLINE=1 PYTHONPATH=. python benchmarks/decoder_portability.py
"""

import gzip
import itertools
import tempfile
from pathlib import Path

import numpy as np
from sentence_transformers import CrossEncoder

from reranker import Reranker
from reranker.cli.export import main as export_main
from reranker.first_stage.prepare import join_run_with_texts
from reranker.io.corpus import iter_corpus
from reranker.io.queries import read_queries
from reranker.io.rerank_input import iter_query_blocks
from reranker.io.runs import read_run
from reranker.model.random_model import build_corpus_tokenizer, save_random_decoder
from tests.training.test_decoder_portability import LONG, transformers_scores
from tests.training.test_decoder_training import lora_run

data, root = Path("../shared/data/offline"), Path(tempfile.mkdtemp())
texts = [p.text for _, p in itertools.islice(iter_corpus(str(data / "corpus.jsonl.gz")), 3000)]
with gzip.open(data / "train.jsonl.gz", "rt") as rows:
    (root / "train8.jsonl").write_text("".join(itertools.islice(rows, 8)))
run = dict(itertools.islice(read_run(data / "dev600" / "run.bm25.trec", depth=5).items(), 4))
join_run_with_texts(
    read_queries(str(data / "dev600" / "queries.tsv")),
    run,
    "run",
    str(data / "corpus.jsonl.gz"),
    str(root / "dev20.jsonl"),
)
pairs = [(c.query, c.text) for b in iter_query_blocks(root / "dev20.jsonl") for c in b.candidates]
for family, head in (("llama", "last_token"), ("qwen3", "yes_no")):
    base = save_random_decoder(root / family, build_corpus_tokenizer(texts, family), family)
    merged = lora_run(base, root / "train8.jsonl", root / head, head, merge_lora=True)
    ours = Reranker.from_pretrained(str(merged), **LONG).predict(pairs)
    st = CrossEncoder(str(merged), device="cpu")
    for name, theirs in (
        ("transformers batch", transformers_scores(str(merged), pairs, head, True)),
        ("transformers 1 by 1", transformers_scores(str(merged), pairs, head, False)),
        ("CrossEncoder batch", st.predict(pairs, batch_size=20, show_progress_bar=False)),
        ("CrossEncoder 1 by 1", st.predict(pairs, batch_size=1, show_progress_bar=False)),
    ):
        print(f"{head}: {name}: max |diff| {np.abs(theirs - ours).max():.2e} (score spread {np.ptp(ours):.3f})")
    if head == "yes_no":
        export_main(["--to", "seq_cls", "--model_name_or_path", str(merged), "--output_dir", str(root / "seq")])
        for batch in (True, False):
            diff = np.abs(transformers_scores(str(root / "seq"), pairs, "last_token", batch) - ours).max()
            print(f"seq_cls export (transformers, batch={batch}) vs logit(yes)-logit(no): max |diff| {diff:.2e}")
