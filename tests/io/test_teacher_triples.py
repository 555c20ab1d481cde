"""Published teacher scores (`pos_score neg_score qid pid_pos pid_neg` lines) into training rows."""

from __future__ import annotations

import gzip
import itertools
import json
import os

import pytest

from reranker.cli.teacher_scores import main as teacher_main
from reranker.io.errors import InputError
from reranker.io.resumable import partial_paths
from reranker.io.teacher_triples import import_teacher_triples
from reranker.io.train_rows import load_train_dataset, rows_have_teacher_scores


@pytest.fixture
def files(tmp_path, offline_data):
    queries = tmp_path / "queries.tsv"
    queries.write_text("q1\tfirst query\nq2\tsecond query\nq3\tunused\n")
    with gzip.open(offline_data / "corpus.jsonl.gz", "rt") as corpus:
        passages = [json.loads(next(corpus)) for _ in range(6)]
    collection = tmp_path / "collection.tsv"
    collection.write_text("".join(f"{p['docid']}\t{p['text']}\n" for p in passages))
    return queries, collection, [p["docid"] for p in passages], {p["docid"]: p["text"] for p in passages}


def write_triples(path, lines):
    path.write_text("".join("\t".join(map(str, line)) + "\n" for line in lines))
    return path


def test_rows_group_each_query_with_its_scores(files, tmp_path):
    queries, collection, pid, text = files
    triples = write_triples(tmp_path / "t.tsv", [
        (9.5, 1.25, "q2", pid[0], pid[1]), (7.0, -3.5, "q1", pid[2], pid[3]), (9.5, 0.5, "q2", pid[0], pid[4]),
        (7.0, 2.0, "q1", pid[2], pid[5]), (6.0, 2.0, "q1", pid[1], pid[5]),
    ])  # fmt: skip
    stats = import_teacher_triples(
        str(triples), str(queries), str(collection), str(tmp_path / "out.jsonl.gz"), run_lines=2
    )  # fmt: skip  (three sorted runs, merged)
    assert (stats.queries, stats.triples, stats.positives, stats.negatives) == (2, 5, 3, 4)

    def passage(number, score):
        return {"docid": pid[number], "title": "", "text": text[pid[number]], "score": score}

    with gzip.open(tmp_path / "out.jsonl.gz", "rt") as rows:
        assert [json.loads(row) for row in rows] == [
            {"query_id": "q1", "query": "first query", "positive_passages": [passage(2, 7.0), passage(1, 6.0)],
             "negative_passages": [passage(3, -3.5), passage(5, 2.0)]},
            {"query_id": "q2", "query": "second query", "positive_passages": [passage(0, 9.5)],
             "negative_passages": [passage(1, 1.25), passage(4, 0.5)]},
        ]  # fmt: skip
    dataset = load_train_dataset(str(tmp_path / "out.jsonl.gz"), cache_dir=str(tmp_path / "cache"))
    assert rows_have_teacher_scores(dataset)


@pytest.mark.parametrize(
    "line, message",
    [
        (("7", "1", "q9", 0, 1), r"t\.tsv:2: qid 'q9' is not in the queries"),
        (("7", "1", "q1", 0, "nope"), r"t\.tsv:2: pid_neg 'nope' is not in the collection"),
        (("nan", "1", "q1", 0, 1), r"t\.tsv:2: pos_score must be finite, got 'nan'"),
        (("7", "x", "q1", 0, 1), r"t\.tsv:2: neg_score must be a number, got 'x'"),
        (("7", "1", "q1", 0), r"t\.tsv:2: expected 5 columns, got 4"),
        (("7", "1", "q1", 2, 0), r"t\.tsv:2: passage .* is both a positive and a negative of query 'q1'"),
    ],
)
def test_bad_triples_name_the_line_and_write_nothing(files, tmp_path, line, message):
    queries, collection, pid, _ = files
    fields = [pid[value] if isinstance(value, int) else value for value in line]
    triples = write_triples(tmp_path / "t.tsv", [(7.0, 1.0, "q1", pid[0], pid[2]), fields])
    with pytest.raises(InputError, match=message):
        import_teacher_triples(str(triples), str(queries), str(collection), str(tmp_path / "out.jsonl"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collection.tsv", "queries.tsv", "t.tsv"]


def test_command_line(files, tmp_path, capsys):
    queries, collection, pid, _ = files
    triples = write_triples(tmp_path / "t.tsv", [(7.0, 1.0, "q1", pid[0], pid[2])])
    output = tmp_path / "out.jsonl"
    assert teacher_main(["--triples", str(triples), "--queries", str(queries), "--collection", str(collection),
                         "--output", str(output)]) == 0  # fmt: skip
    assert capsys.readouterr().out.strip() == f"wrote 1 rows (1 positives, 1 negatives, from 1 triples) to {output}"
    summary = json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    assert list(summary["phase_seconds"]) == ["queries", "sort_runs", "wanted", "collection", "rows"]
    assert all(seconds >= 0 for seconds in summary["phase_seconds"].values())
    assert teacher_main(["--triples", str(triples), "--output", str(output)]) == 2
    assert "error: --triples goes with --queries and --collection" in capsys.readouterr().err


def synthetic(tmp_path, lines, queries=None, passages=200, seed=0):
    """A triples file of `lines` lines over `queries` queries (default lines // 10) and a collection."""
    import random

    rng = random.Random(seed)
    queries = queries or max(1, lines // 10)
    (tmp_path / "q.tsv").write_text("".join(f"{q}\tquery number {q} " + "word " * 8 + "\n" for q in range(queries)))
    (tmp_path / "c.tsv").write_text("".join(f"{p}\tpassage {p}\n" for p in range(passages)))
    write_triples(tmp_path / "t.tsv", [
        (f"{rng.uniform(0, 9):.3f}", f"{rng.uniform(-9, 0):.3f}", q, q % 50, 50 + rng.randrange(passages - 50))
        for q in (rng.randrange(queries) for _ in range(lines))
    ])  # fmt: skip
    return [str(tmp_path / name) for name in ("t.tsv", "q.tsv", "c.tsv")]


class Killed(BaseException):
    """Stands for a SIGKILL: not an InputError, so the work folder stays for the rerun."""


@pytest.mark.parametrize("where", ["sorting", "wanted", "collection", "writing"])
def test_a_killed_import_resumes_where_it_stopped_and_writes_the_same_bytes(tmp_path, monkeypatch, where):
    import reranker.io.teacher_triples as module

    inputs = synthetic(tmp_path, 3000)
    settings = {"run_lines": 500, "chunk_queries": 40}
    monkeypatch.setattr(module, "COLLECTION_BATCH", 50)
    whole = import_teacher_triples(*inputs, str(tmp_path / "whole.jsonl.gz"), **settings)
    calls = {"n": 0}
    real = {"sorting": os.replace, "writing": module.gzip_member, "collection": module.iter_corpus,
            "wanted": module.add_wanted}  # fmt: skip

    # the third durable step is interrupted: the two before it are kept. A run renames two files into place (its
    # pids, then its lines): sorting is killed at run 2's second rename.
    kill_at = 6 if where == "sorting" else 3

    def killed_at_step(*args):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed
        return real[where](*args)

    def corpus_killed_at_120(source):
        for number, item in enumerate(real["collection"](source)):
            if number == 120:  # in the third batch of 50
                raise Killed
            yield item

    def wanted_killed_at_100(db, pids):
        real["wanted"](db, itertools.islice(pids, 100))
        db.close()  # as the process's death would: the uncommitted inserts are rolled back
        raise Killed

    output = str(tmp_path / "resumed.jsonl.gz")
    with monkeypatch.context() as patch:
        if where == "wanted":
            patch.setattr(module, "add_wanted", wanted_killed_at_100)
        elif where == "sorting":
            patch.setattr(module.os, "replace", killed_at_step)
        elif where == "writing":
            patch.setattr(module, "gzip_member", killed_at_step)
        else:
            patch.setattr(module, "iter_corpus", corpus_killed_at_120)
        with pytest.raises(Killed):
            import_teacher_triples(*inputs, output, **settings)
    work = tmp_path / ".resumed.jsonl.gz.work"
    assert work.is_dir()
    progress = partial_paths(output)[1]
    written = json.loads(progress.read_text())["candidates"] if progress.exists() else 0
    skipped, real_read, parsed, real_parse = [], module._read_triples, [], module._parse
    monkeypatch.setattr(module, "_read_triples", lambda path, skip: skipped.append(skip) or real_read(path, skip))
    monkeypatch.setattr(module, "_parse", lambda text: parsed.append(text) or real_parse(text))
    assert import_teacher_triples(*inputs, output, **settings) == whole
    assert (tmp_path / "resumed.jsonl.gz").read_bytes() == (tmp_path / "whole.jsonl.gz").read_bytes()
    assert skipped == ([1000] if where == "sorting" else [3000])  # the runs made before the kill were kept
    assert (where == "writing") == (written > 0)
    assert len(parsed) == whole.triples - written  # the rows written before the kill are not merged again
    assert not work.exists()


def test_memory_does_not_grow_with_the_triples_or_the_queries(tmp_path):
    """Python-heap peak (tracemalloc) for 8x the triples and queries at one run size: what may grow is one read
    buffer per sorted run in the merge (4 runs, then 32; 40 for the real 40M-line file at the default 1M lines a
    run), at most 24 KiB each, not the queries or the triples (the import before issue 27 grew by megabytes)."""
    import tracemalloc

    peaks = []
    for lines in (4000, 32000):
        folder = tmp_path / str(lines)
        folder.mkdir()
        inputs = synthetic(folder, lines, queries=lines // 2)
        tracemalloc.start()
        import_teacher_triples(*inputs, str(folder / "out.jsonl.gz"), run_lines=1000, chunk_queries=50)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < (32 - 4) * 24 * 1024, peaks
