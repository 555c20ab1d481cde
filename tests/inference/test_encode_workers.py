"""Reading and tokenizing a rerank file in worker processes (`encode_workers`, issue 37): the chunks and the output
file a thread gives, through sharding, a crash and its resume, bad input and a worker that dies."""

import json
import os

import numpy as np
import pytest
import torch

from reranker.inference.chunks import Sharding
from reranker.inference.score_file import encoded_chunks, rerank_file
from reranker.inference.scoring import PairScorer
from reranker.inference.worker_processes import in_worker_processes
from reranker.io.errors import InputError, ParameterError
from reranker.io.resumable import Progress, partial_paths
from reranker.model.loading import load_cross_encoder
from reranker.model.pair_encoding import PairEncoder
from tests.conftest import write_bm25_rerank_file
from tests.inference.test_rerank import killed_at_call

pytestmark = pytest.mark.slow  # spawns worker processes (each imports torch and transformers: seconds)

CHUNK = 120  # 40 queries x 20 candidates in 7 chunks (6 queries each, the last 4): each worker encodes several


@pytest.fixture(scope="module")
def dev_file(offline_data, tmp_path_factory):
    """The BM25 top 20 of 40 dev600 queries (800 pairs) as a rerank file."""
    return write_bm25_rerank_file(offline_data, tmp_path_factory.mktemp("dev") / "dev.rerank.jsonl", 40)


@pytest.fixture(scope="module")
def scorer(tokenizer, tiny_model_dir):
    return PairScorer(load_cross_encoder(str(tiny_model_dir)), PairEncoder(tokenizer, 16, 128), torch.device("cpu"))


def chunk_list(scorer, path, workers, start=None, sharding=None):
    start = start or Progress("job")
    return list(encoded_chunks(scorer.encoder, str(path), start, CHUNK, sharding or Sharding(), workers))


@pytest.mark.parametrize("sharding", [Sharding(), Sharding(((2, 1),))])
def test_workers_encode_the_chunks_a_thread_encodes(scorer, dev_file, sharding):
    threaded = chunk_list(scorer, dev_file, 0, sharding=sharding)
    in_workers = chunk_list(scorer, dev_file, 2, sharding=sharding)
    assert len(threaded) == (7 if sharding == Sharding() else 3)
    assert [(c.chunks_seen, c.input_lines, c.queries) for c in in_workers] == [
        (c.chunks_seen, c.input_lines, c.queries) for c in threaded
    ]
    for ours, theirs in zip(in_workers, threaded, strict=True):
        for name in ("ids", "types", "offsets"):
            np.testing.assert_array_equal(getattr(ours.pairs, name), getattr(theirs.pairs, name))


def test_workers_start_where_a_resumed_job_starts(scorer, dev_file):
    whole = chunk_list(scorer, dev_file, 0)
    resumed = chunk_list(scorer, dev_file, 3, start=Progress("job", whole[1].input_lines, whole[1].chunks_seen))
    assert [c.chunks_seen for c in resumed] == [c.chunks_seen for c in whole[2:]]
    np.testing.assert_array_equal(resumed[-1].pairs.ids, whole[-1].pairs.ids)


def test_the_file_written_with_workers_is_byte_identical_and_resumes(tmp_path, scorer, dev_file, monkeypatch):
    rerank_file(scorer, str(dev_file), str(tmp_path / "thread.txt"), chunk_size=CHUNK)
    out = tmp_path / "workers.txt"
    with monkeypatch.context() as patch:
        patch.setattr(scorer, "submit", killed_at_call(scorer.submit, 4))
        with pytest.raises(KeyboardInterrupt):
            rerank_file(scorer, str(dev_file), str(out), chunk_size=CHUNK, encode_workers=2)
    assert json.loads(partial_paths(out)[1].read_text())["chunks_seen"] == 3
    resumed = rerank_file(scorer, str(dev_file), str(out), chunk_size=CHUNK, encode_workers=2)
    assert resumed.candidates == 800
    assert out.read_bytes() == (tmp_path / "thread.txt").read_bytes()


def test_bad_input_in_a_worker_is_the_same_one_line_error(tmp_path, scorer, dev_file):
    lines = dev_file.read_text().splitlines(keepends=True)
    lines[400] = "{not json\n"  # in chunk 3 (lines 361-480): the second worker's
    (tmp_path / "in.jsonl").write_text("".join(lines))
    with pytest.raises(InputError, match=r"in\.jsonl:401: malformed JSON") as error:
        rerank_file(scorer, str(tmp_path / "in.jsonl"), str(tmp_path / "out.txt"), chunk_size=CHUNK,
                    encode_workers=2)  # fmt: skip
    assert error.value.line == 401
    assert not (tmp_path / "out.txt").exists()


def test_negative_workers_are_refused(tmp_path, scorer, dev_file):
    with pytest.raises(ParameterError, match="encode_workers must be >= 0, got -1"):
        rerank_file(scorer, str(dev_file), str(tmp_path / "out.txt"), encode_workers=-1)


def exit_in_the_second_share(share):
    """A worker share that dies without an exception in worker 1 (as a worker killed for memory would)."""
    count, index = share
    if index == 1:
        os._exit(3)
    yield from range(index, 10, count)


def test_a_worker_that_dies_is_an_error_not_a_hang():
    items = in_worker_processes(exit_in_the_second_share, workers=2, order=lambda item: item)
    with pytest.raises(RuntimeError, match=r"worker 1 died \(exit code 3\) before it finished"):
        list(items)
