"""The full-size simulation (benchmarks/full_size): the generator's shapes, ids and determinism, and the driver."""

import gzip
import json
import subprocess
import sys

import pytest

from reranker.io.corpus import iter_corpus
from reranker.io.queries import read_queries
from reranker.io.runs import read_run
from reranker.io.train_rows import iter_train_file
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks" / "full_size"))
from compare import main as compare_main  # noqa: E402  (a script's folder)
from generate import Texts, generate, sizes  # noqa: E402

SCALE = 0.0005  # 4,421 passages, 200 train queries, 3 dev queries, 20,000 triples


@pytest.fixture(scope="module")
def texts(offline_data):
    return Texts(offline_data)


@pytest.fixture(scope="module")
def data(tmp_path_factory, texts):
    folder = tmp_path_factory.mktemp("full_size")
    return folder, generate(folder, SCALE, seed=5, texts=texts)


def test_sizes_are_ms_marcos_times_the_scale():
    assert sizes(1.0) == {"passages": 8_841_823, "train_queries": 400_000, "dev_queries": 6_980,
                          "triples": 40_000_000}  # fmt: skip
    assert sizes(0.1)["triples"] == 4_000_000
    with pytest.raises(SystemExit, match="--scale must be in"):
        sizes(0)


def test_files_have_the_shapes_and_ids_of_ms_marco(data, texts):
    folder, n = data
    passages = {int(p.docid): p.text for _, p in iter_corpus(str(folder / "collection.tsv"))}
    assert sorted(passages) == list(range(n["passages"]))  # pids 0..P-1, as in MS MARCO
    lengths = sorted(len(text.split()) for text in passages.values())
    sample = sorted(texts.passage_lengths)
    # the median passage length is the offline sample's, within a few words
    assert abs(lengths[len(lengths) // 2] - sample[len(sample) // 2]) <= 3
    train, dev = read_queries(str(folder / "queries.train.tsv")), read_queries(str(folder / "queries.dev.tsv"))
    assert (len(train), len(dev)) == (n["train_queries"], n["dev_queries"]) and not set(train) & set(dev)
    run = read_run(str(folder / "run.dev.trec"))
    assert set(run) == set(dev) and all(len(candidates) == 1000 for candidates in run.values())
    assert n["run_lines"] == 1000 * n["dev_queries"]
    with open(folder / "triples.tsv") as handle:
        triples = [line.rstrip("\n").split("\t") for line in handle]
    assert len(triples) == n["triples"] and all(len(t) == 5 for t in triples)
    assert {t[2] for t in triples} <= set(train) and {int(t[4]) for t in triples} <= set(passages)
    assert [t[2] for t in triples[:50]] != sorted(t[2] for t in triples[:50])  # not grouped by query
    rows = [row for _, _, row in iter_train_file(folder / "train.jsonl.gz")]
    assert len(rows) == n["train_queries"] and all(len(r["negative_passages"]) == 30 for r in rows)
    first = rows[0]["positive_passages"][0]
    assert first["text"] == passages[int(first["docid"])]  # rows quote the collection


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others(data, texts, tmp_path):
    folder, _ = data
    generate(tmp_path / "same", SCALE, seed=5, texts=texts)
    generate(tmp_path / "other", SCALE, seed=6, texts=texts)
    for name in ("collection.tsv", "queries.train.tsv", "run.dev.trec", "triples.tsv", "train.jsonl.gz"):
        assert (tmp_path / "same" / name).read_bytes() == (folder / name).read_bytes(), name
    assert (tmp_path / "other" / "triples.tsv").read_bytes() != (folder / "triples.tsv").read_bytes()
    with gzip.open(tmp_path / "other" / "train.jsonl.gz", "rt") as handle:
        assert json.loads(next(handle))["query_id"] != rows_first_qid(folder)


def rows_first_qid(folder):
    with gzip.open(folder / "train.jsonl.gz", "rt") as handle:
        return json.loads(next(handle))["query_id"]


@pytest.mark.slow
def test_driver_measures_stages_and_the_import_resumes_identically(tmp_path):
    workdir = tmp_path / "work"
    stages = "read,prepare,import_triples,import_kill"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/full_size/run.py"), "--scale", str(SCALE),
                           "--workdir", str(workdir), "--stages", stages],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = {r["stage"]: r for r in json.loads((workdir / "results.json").read_text())}
    assert list(results) == ["read_corpus_and_run", "prepare_rerank_file", "teacher_triples_import",
                             "teacher_import_kill_resume"]  # fmt: skip
    assert results["prepare_rerank_file"]["items"] == 3000  # one line per (query, candidate)
    assert results["teacher_triples_import"]["items"] == 20_000
    for result in results.values():
        assert result["scale"] == SCALE and result["wall_s"] > 0 and 10 < result["peak_rss_mib"] < 4096
        assert result["items_per_s"] == pytest.approx(result["items"] / result["wall_s"], rel=0.01)
    assert results["teacher_import_kill_resume"]["identical"] is True
    assert "teacher_triples_import" in done.stdout and "steps: queries " in done.stdout


@pytest.mark.slow
def test_driver_runs_the_host_side_sharded_and_merged_identically(tmp_path):
    workdir = tmp_path / "work"
    stages = "prepare,infer,infer_sharded,convert_and_evaluate"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/full_size/run.py"), "--scale", str(SCALE),
                           "--workdir", str(workdir), "--stages", stages, "--model", "none"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = {r["stage"]: r for r in json.loads((workdir / "results.json").read_text())}
    assert list(results) == ["prepare_rerank_file", "inference_host_side", "inference_host_side_8_shards",
                             "merge_scores", "convert_result_to_marco", "evaluate"]  # fmt: skip
    assert results["merge_scores"]["identical"] is True
    scores = (workdir / "scores.txt").read_text().splitlines()
    assert len(scores) == 3000 and len({line.split("\t")[0] for line in scores}) == 3
    assert (workdir / "scores.txt.summary.json").is_file()  # written by rerank_file: complete


def test_compare_prints_each_stage_at_each_scale_with_the_scaling_ratios(tmp_path, capsys):
    rows = {0.1: [("prepare", 10.0, 500.0), ("import", 20.0, 300.0)], 1.0: [("prepare", 130.0, 550.0)]}
    for scale, stages in rows.items():
        (tmp_path / str(scale)).mkdir()
        results = [{"stage": stage, "scale": scale, "wall_s": wall, "peak_rss_mib": rss, "items": 1,
                    "items_per_s": 1.0, "identical": None} for stage, wall, rss in stages]  # fmt: skip
        (tmp_path / str(scale) / "results.json").write_text(json.dumps(results))
    compare_main([str(tmp_path / "1.0"), str(tmp_path / "0.1")])  # any order: sorted by scale
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| stage | 0.1: wall s / RSS MiB | 1: wall s / RSS MiB | time ratio | memory ratio |"
    assert lines[2] == "| prepare | 10.0 / 500 | 130.0 / 550 | 1.30 | 1.10 |"  # 130 / (10 x 10); 550 / 500
    assert lines[3] == "| import | 20.0 / 300 |  |  |  |"
