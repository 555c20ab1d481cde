"""All five stages as a user runs them (the reference's flags), on real MS MARCO data with a tiny BERT."""

import gzip
import itertools
import json

import pytest
from transformers import AutoModelForSequenceClassification

from reranker.io.summary import summary_path

pytestmark = pytest.mark.slow  # subprocesses: the stage scripts, kills, torchrun

N_QUERIES = 5


@pytest.fixture(scope="module")
def sample(tmp_path_factory, offline_data):
    """12 real training queries; the first 5 dev600 queries with their real BM25 top-20 and qrels."""
    root = tmp_path_factory.mktemp("sample")
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        (root / "train.jsonl").write_text("".join(itertools.islice(rows, 12)))
    queries = (offline_data / "dev600" / "queries.tsv").read_text().splitlines()[:N_QUERIES]
    (root / "queries.tsv").write_text("\n".join(queries) + "\n")
    qids = {line.split("\t")[0] for line in queries}
    for name in ("run.bm25.trec", "qrels.txt"):
        kept = [line for line in (offline_data / "dev600" / name).read_text().splitlines() if line.split()[0] in qids]
        (root / name).write_text("\n".join(kept) + "\n")
    return root


def test_five_stages(sample, tiny_model_dir, offline_data, run_script, tmp_path):
    model = tmp_path / "reranker_msmarco"
    run_script(
        "train_reranker.py", "--output_dir", model, "--model_name_or_path", tiny_model_dir, "--save_steps", "20000",
        "--dataset_name", sample / "train.jsonl", "--fp16", "--per_device_train_batch_size", "8",
        "--train_n_passages", "8", "--learning_rate", "5e-6", "--q_max_len", "16", "--p_max_len", "128",
        "--num_train_epochs", "1", "--logging_steps", "500", "--overwrite_output_dir",
    )  # fmt: skip
    assert AutoModelForSequenceClassification.from_pretrained(model).config.num_labels == 1

    rerank_input = tmp_path / "rerank_input_file.bm25.jsonl"
    result = run_script(
        "prepare_rerank_file.py", "--query_data_name", sample / "queries.tsv", "--corpus",
        offline_data / "corpus.jsonl.gz", "--retrieval", sample / "run.bm25.trec", "--output_path", rerank_input,
    )  # fmt: skip
    assert "wrote 100 candidates of 5 queries" in result.stdout
    first = json.loads(rerank_input.read_text().splitlines()[0])
    assert list(first) == ["query_id", "query", "docid", "title", "text", "score"]
    assert (first["query_id"], first["docid"], first["score"]) == ("9083", "7067274", 20.0)

    counts = run_script("data_script.py", rerank_input).stdout
    assert counts.splitlines() == [
        "queries: 5",
        "candidates: 100",
        "min depth per query: 20",
        "max depth per query: 20",
    ]

    scores = tmp_path / "rerank_out_file.bm25.monobert.txt"
    result = run_script(
        "reranker_inference.py", "--output_dir=temp", "--model_name_or_path", model, "--tokenizer_name", model,
        "--encode_in_path", rerank_input, "--fp16", "--per_device_eval_batch_size", "156", "--q_max_len", "16",
        "--p_max_len", "128", "--dataset_name", "data_script.py", "--encoded_save_path", scores,
    )  # fmt: skip
    assert "fp16 needs a CUDA GPU" in result.stderr
    lines = [line.split("\t") for line in scores.read_text().splitlines()]
    assert len(lines) == 100 and all(len(cols) == 3 for cols in lines)
    query_order = [line.split("\t")[0] for line in (sample / "queries.tsv").read_text().splitlines()]
    assert [cols[0] for cols in lines[::20]] == query_order  # run order = first appearance
    for start in range(0, 100, 20):
        block = [float(cols[2]) for cols in lines[start : start + 20]]
        assert block == sorted(block, reverse=True)

    marco = tmp_path / "rerank_out_file.bm25.monobert.marco"
    run_script("convert_result_to_marco.py", "--input", scores, "--output", marco)
    ranked = [line.split("\t") for line in marco.read_text().splitlines()]
    assert [(q, d) for q, d, _ in ranked] == [(q, d) for q, d, _ in lines]
    assert [int(r) for _, _, r in ranked[:20]] == list(range(1, 21))

    outputs = {"prepare": rerank_input, "inference": scores, "convert": marco}
    summaries = {stage: json.loads(summary_path(path).read_text()) for stage, path in outputs.items()}
    assert [s["stage"] for s in summaries.values()] == ["prepare", "inference", "convert"]
    assert summaries["prepare"]["candidates"] == summaries["inference"]["candidates"] == 100
    assert summaries["convert"]["lines"] == 100 and summaries["inference"]["pairs_per_second"] > 0
    assert summaries["inference"]["arguments"]["per_device_eval_batch_size"] == 156

    report = run_script("-m", "reranker.evaluate", "--qrels", sample / "qrels.txt", "--run", marco).stdout.splitlines()
    assert report[0] == report[3] == "#####################"
    assert report[1].startswith("MRR @10: ") and report[2] == "QueriesRanked: 5"
    assert 0.0 <= float(report[1].split(": ")[1]) <= 1.0


def test_bad_input_is_one_line_and_exit_2(tmp_path, run_script):
    (tmp_path / "run.txt").write_text("1 Q0 a 1 2 x\n1 Q0 b two 1 x\n")
    result = run_script(
        "prepare_rerank_file.py", "--query_data_name", tmp_path / "q.tsv", "--corpus", tmp_path / "c.tsv",
        "--retrieval", tmp_path / "run.txt", "--output_path", tmp_path / "out.jsonl", check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()  # a progress bar, then the error as the one last line
    assert lines[-1] == f"error: {tmp_path / 'run.txt'}:2: rank must be an integer, got 'two'"
    assert sum(line.startswith("error:") for line in lines) == 1 and "Traceback" not in result.stderr
    result = run_script("prepare_rerank_file.py", "--query_data_name", "q", "--corpus", "c", "--retrieval",
                        tmp_path / "run.txt", "--output_path", "o", "--depth", "0", check=False)  # fmt: skip
    assert result.returncode == 2 and result.stderr.strip() == "error: --depth must be >= 1, got 0"
    assert not (tmp_path / "out.jsonl").exists()


def test_model_without_tokenizer_is_a_clear_error(tmp_path, tiny_model_dir, run_script):
    bare = tmp_path / "bare"
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).save_pretrained(bare)
    (tmp_path / "in.jsonl").write_text('{"query_id": "1", "query": "q", "docid": "d", "text": "t"}\n')
    result = run_script(
        "reranker_inference.py", "--model_name_or_path", bare, "--encode_in_path", tmp_path / "in.jsonl",
        "--encoded_save_path", tmp_path / "out.txt", check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {bare}: cannot load a tokenizer")
