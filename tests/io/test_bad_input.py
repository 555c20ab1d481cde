"""Every reader rejects bad input with one error naming the file, the line and the problem."""

import gzip
import json

import pytest

from reranker.inference.arguments import RerankArguments
from reranker.io.corpus import load_passages
from reranker.io.errors import InputError, UsageError
from reranker.io.qrels import read_qrels
from reranker.io.queries import read_queries
from reranker.io.runs import iter_score_blocks
from reranker.io.train_rows import load_train_dataset

GOOD_TRAIN = {"query_id": "1", "query": "q", "positive_passages": [{"docid": "a", "title": "", "text": "p"}],
              "negative_passages": [{"docid": "b", "title": "", "text": "n"}]}  # fmt: skip


def train_line(**changes):
    return json.dumps({**GOOD_TRAIN, **changes})


def write(tmp_path, name, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def read_train(path):
    return load_train_dataset(str(path), cache_dir=str(path.parent / "cache"))


def corpus_reader(path):
    return load_passages(str(path), {"a", "b"})


CASES = [
    # training data
    (read_train, "train.jsonl", train_line() + "\n{oops\n", r"train\.jsonl:2: malformed JSON"),
    (read_train, "train.jsonl", train_line(query=7) + "\n", r"train\.jsonl:1: field 'query' must be a string"),
    (read_train, "train.jsonl", train_line(query=" \t") + "\n", r"train\.jsonl:1: field 'query' is empty"),
    (
        read_train,
        "train.jsonl",
        json.dumps({"query_id": "1", "query": "q"}) + "\n",
        r"train\.jsonl:1: field 'positive_passages' must be a list",
    ),
    (read_train, "train.jsonl", train_line(positive_passages=[]) + "\n", r"train\.jsonl:1: query '1' has no positive"),
    (read_train, "train.jsonl", train_line(negative_passages=[]) + "\n", r"train\.jsonl:1: query '1' has no negative"),
    (
        read_train,
        "train.jsonl",
        train_line(negative_passages=[{"docid": "b"}]) + "\n",
        r"train\.jsonl:1: negative_passages\[0\]: missing field 'text'",
    ),
    (
        read_train,
        "train.jsonl",
        train_line(negative_passages=["b"]) + "\n",
        r"train\.jsonl:1: negative_passages\[0\] must be an object",
    ),
    (read_train, "train.jsonl", b"[1, 2]\n", r"train\.jsonl:1: expected a JSON object, got list"),
    (read_train, "train.jsonl", train_line().encode() + b"\n\xff\xfe\n", r"train\.jsonl:2: not valid UTF-8"),
    (read_train, "train.jsonl", "", r"train\.jsonl: file is empty"),
    # queries
    (read_queries, "q.tsv", "1\tfine\n2\n", r"q\.tsv:2: expected 2 columns, got 1"),
    (read_queries, "q.tsv", "1\tfine\n2\ta\tb\n", r"q\.tsv:2: expected 2 columns, got 3"),
    (read_queries, "q.tsv", "1\t   \n", r"q\.tsv:1: query text is empty"),
    (read_queries, "q.tsv", "\tquery\n", r"q\.tsv:1: query id is empty"),
    (read_queries, "q.tsv", "1\ta\n1\tb\n", r"q\.tsv:2: duplicate query id '1'"),
    (read_queries, "q.tsv", b"1\tcaf\xe9\n", r"q\.tsv:1: not valid UTF-8"),
    (read_queries, "q.jsonl", '{"query_id": 1, "query": "a"}\n', r"q\.jsonl:1: field 'query_id' must be a string"),
    (read_queries, "q.jsonl", '{"query_id": "1"}\n', r"q\.jsonl:1: missing field 'query'"),
    # corpus
    (corpus_reader, "c.jsonl", '{"docid": "a", "title": ""}\n', r"c\.jsonl:1: missing field 'text'"),
    (
        corpus_reader,
        "c.jsonl",
        '{"docid": "a", "text": "x"}\n{"docid": "b", "text": "\\ud800"}\n',
        r"c\.jsonl:2: malformed JSON \(no low surrogate in string at column \d+\)",
    ),  # json.loads lets it through
    (
        corpus_reader,
        "c.jsonl",
        '{"docid": "a", "title": 3, "text": "t"}\n',
        r"c\.jsonl:1: field 'title' must be a string",
    ),
    (corpus_reader, "c.jsonl", '{"docid": "a", "text": ""}\n', r"c\.jsonl:1: field 'text' is empty"),
    (corpus_reader, "c.tsv", "a\tfine\nb\n", r"c\.tsv:2: expected 2 or 3 columns, got 1"),
    (corpus_reader, "c.tsv", "a\t \n", r"c\.tsv:1: passage text is empty"),
    (corpus_reader, "c.tsv", "a\tx\na\ty\n", r"c\.tsv:2: duplicate passage id 'a'"),
    (corpus_reader, "c.jsonl.gz", b"not gzip at all", r"c\.jsonl\.gz:1: cannot decompress"),
    # score files (inference output, convert input)
    (lambda p: list(iter_score_blocks(p)), "s.txt", "1\ta\t0.5\n1\ta\n", r"s\.txt:2: expected 3 columns, got 2"),
    (lambda p: list(iter_score_blocks(p)), "s.txt", "1\ta\thigh\n", r"s\.txt:1: score must be a number, got 'high'"),
    (lambda p: list(iter_score_blocks(p)), "s.txt", "1\ta\t1\n1\ta\t2\n", r"s\.txt:2: duplicate candidate 'a'"),
    # qrels
    (read_qrels, "qrels.txt", "1 0 a 1\n1 0 a\n", r"qrels\.txt:2: expected 4 columns, got 3"),
    (read_qrels, "qrels.txt", "1 0 a 1\n1 0 a 1 x\n", r"qrels\.txt:2: expected 4 columns, got 5"),
    (read_qrels, "qrels.txt", "1 0 a 1\n1 0 a 0\n", r"qrels\.txt:2: duplicate judgment of 'a' for query '1'"),
    (read_qrels, "qrels.txt", "", r"qrels\.txt: file is empty"),
]


@pytest.mark.parametrize("reader, name, content, message", CASES, ids=[c[3][:40] for c in CASES])
def test_reader_rejects(tmp_path, reader, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(InputError, match=message):
        reader(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.tsv: no such file"):
        read_queries(str(tmp_path / "nope.tsv"))


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"per_device_eval_batch_size": 0}, "per_device_eval_batch_size must be >= 1"),
        ({"encode_num_shard": 2, "encode_shard_index": 2}, r"encode_shard_index must be in \[0, 2\)"),
        ({"chunk_size": 0}, "chunk_size must be >= 1"),
        ({"fp16": True, "bf16": True}, "mutually exclusive"),
        ({"q_max_len": 0}, "q_max_len must be >= 1"),
        ({"max_tokens_per_batch": 100}, "max_tokens_per_batch must hold at least one pair"),
        ({"pad_to_multiple_of": 0}, "pad_to_multiple_of must be >= 1, got 0"),
        ({"dataset_name": "Tevatron/msmarco-passage"}, "rerank inputs are local JSONL files"),
        ({"encode_in_path": None}, "encode_in_path is required"),
    ],
)
def test_inference_flags(flags, message):
    with pytest.raises(UsageError, match=message):
        RerankArguments(**{"encode_in_path": "in.jsonl", "encoded_save_path": "out.txt", **flags})


@pytest.mark.parametrize(
    "script, make_args, message",
    [
        ("convert_result_to_marco.py", lambda d: ["--input", d / "s.txt", "--output", d / "o"],
         "s.txt:2: score must be a number, got 'x'"),
        ("data_script.py", lambda d: [d / "r.jsonl"], "r.jsonl:1: missing field 'docid'"),
        ("reranker_inference.py", lambda d: ["--model_name_or_path", "m", "--encode_in_path", d / "r.jsonl",
                                             "--encoded_save_path", d / "o", "--q_max_len", "0"],
         "--q_max_len must be >= 1, got 0"),
        ("train_reranker.py", lambda d: ["--model_name_or_path", "m", "--output_dir", d / "o", "--dataset_name",
                                         d / "t.jsonl", "--train_n_passages", "1"],
         "--train_n_passages must be >= 2 (1 positive + negatives), got 1"),
        ("-m", lambda d: ["reranker.evaluate", "--qrels", d / "q.txt", "--run", d / "s.txt"],
         "q.txt:1: relevance must be an integer, got 'yes'"),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_cli_prints_one_line_and_exits_2(tmp_path, run_script, script, make_args, message):
    write(tmp_path, "s.txt", "1\ta\t0.5\n1\tb\tx\n")
    write(tmp_path, "r.jsonl", '{"query_id": "1", "query": "q", "text": "t"}\n')
    write(tmp_path, "q.txt", "1 0 a yes\n")
    result = run_script(script, *make_args(tmp_path), check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and errors[0].endswith(message), lines
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_gzip_truncated_midway(tmp_path):
    data = gzip.compress(("\n".join(f"{i}\tquery {i}" for i in range(5000)) + "\n").encode())
    path = write(tmp_path, "q.tsv.gz", data[: len(data) // 2])
    with pytest.raises(InputError, match=r"q\.tsv\.gz:\d+: cannot decompress"):
        read_queries(str(path))
