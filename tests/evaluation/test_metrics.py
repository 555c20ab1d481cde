import math
import tracemalloc

import ir_measures
import pytest

from reranker.cli.evaluate import main
from reranker.evaluation import metrics
from reranker.evaluation.metrics import evaluate, ir_measures_scores, official_mrr_at_10
from reranker.io.qrels import read_qrels
from reranker.io.runs import RunEntry, iter_run, read_run
from tests.conftest import BEIR_QRELS


def run_of(ranked: dict[str, list[str]]):
    return {q: [RunEntry(q, d, r, -float(r)) for r, d in enumerate(docs, start=1)] for q, docs in ranked.items()}


QRELS = {"1": {"a": 1}, "2": {"x": 1, "y": 1}, "3": {"z": 1}, "4": {"w": 1}}
RUN = run_of(
    {
        "1": ["a", "b", "c"],  # relevant at 1 -> 1
        "2": ["b", "c", "y", "x"],  # first relevant at 3 -> 1/3
        "3": [f"d{i}" for i in range(10)] + ["z"],  # relevant at 11 -> 0
        # query 4 not ranked -> 0, still in the denominator
        "5": ["q"],  # not judged: ranked but not evaluated
    }
)


def test_official_mrr_at_10_by_hand():
    assert official_mrr_at_10(QRELS, RUN) == pytest.approx((1 + 1 / 3) / 4)


def test_ndcg_at_10_by_hand():
    # query 2: relevant at ranks 3 and 4; ideal: ranks 1 and 2
    dcg = 1 / math.log2(4) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    expected = (1.0 + dcg / idcg + 0 + 0) / 4
    assert ir_measures_scores(QRELS, RUN, ["nDCG@10"])["nDCG@10"] == pytest.approx(expected)


def test_graded_ndcg_and_recall():
    qrels = {"1": {"a": 2, "b": 1, "c": 0}}
    run = run_of({"1": ["b", "c", "a"]})
    dcg = 1 / math.log2(2) + 2 / math.log2(4)  # trec_eval: gain = grade, discount log2(rank + 1)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    scores = ir_measures_scores(qrels, run, ["nDCG@10", "R@1", "R@100"])
    assert scores["nDCG@10"] == pytest.approx(dcg / idcg)
    assert scores["R@1"] == pytest.approx(0.5) and scores["R@100"] == pytest.approx(1.0)


def test_a_rank_column_that_orders_the_query_decides_not_score_or_file_order(tmp_path):
    qrels = {"1": {"a": 1}}
    trec = tmp_path / "r.trec"
    trec.write_text("1 Q0 b 2 9.0 t\n1 Q0 a 1 1.0 t\n")  # a has the lower score but rank 1
    marco = tmp_path / "r.tsv"
    marco.write_text("1\tb\t2\n1\ta\t1\n")
    for path, run_format in ((trec, "auto"), (marco, "marco")):
        run = read_run(path, run_format)
        assert official_mrr_at_10(qrels, run) == 1.0
        assert ir_measures_scores(qrels, run, ["RR@10"])["RR@10"] == 1.0


def test_beir_and_repeated_rank_runs_evaluate_as_trec_eval(tied_rank_run, beir_folder, capsys):
    main(["--beir", str(beir_folder), "--run", str(tied_rank_run), "--metrics", "RR@10", "nDCG@10"])
    # q1: d3, d2, d1 with d1 relevant (grade 1): RR 1/3, nDCG 1/log2(4); q2: d5 (grade 1), d4 (grade 2), d6: RR 1
    mrr = (1 / 3 + 1) / 2
    ndcg = (1 / math.log2(4) + (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))) / 2
    assert capsys.readouterr().out.splitlines() == [
        "#####################", f"MRR @10: {mrr}", "QueriesRanked: 2", "#####################",
        f"RR@10: {mrr:.4f}", f"nDCG@10: {ndcg:.4f}",
        "QueriesWithoutCandidates: 0 (of the qrels' queries; counted as 0)",
    ]  # fmt: skip
    # trec_eval's own code (pytrec_eval, through ir_measures) reading the file itself gives the same; RR, not RR@10,
    # which ir_measures computes with its msmarco provider, ties by docid ascending (0.75 here)
    measures = [ir_measures.parse_measure("RR"), ir_measures.parse_measure("nDCG@10")]
    qrels = [ir_measures.Qrel(qid, docid, grade) for qid, docid, grade in BEIR_QRELS["test"]]
    direct = ir_measures.calc_aggregate(measures, qrels, ir_measures.read_trec_run(str(tied_rank_run)))
    assert [direct[measure] for measure in measures] == pytest.approx([mrr, ndcg], abs=1e-12)


def test_report_has_the_official_block():
    report = evaluate(QRELS, RUN, ["nDCG@10"]).report().splitlines()
    assert report[:4] == [
        "#####################",
        f"MRR @10: {(1 + 1 / 3) / 4}",
        "QueriesRanked: 4",
        "#####################",
    ]
    assert report[-1].startswith("QueriesWithoutCandidates: 1 ")


def test_cross_check_with_ir_measures_on_real_bm25_run(offline_data):
    qrels = read_qrels(offline_data / "dev600" / "qrels.txt")
    run = read_run(offline_data / "dev600" / "run.bm25.trec")
    official = official_mrr_at_10(qrels, run)
    assert official == pytest.approx(0.3678, abs=5e-5)  # offline/README.md, also trec_eval's value
    assert ir_measures_scores(qrels, run, ["RR@10"])["RR@10"] == pytest.approx(official, abs=1e-12)

    # an independent path: ir_measures parsing the file itself, trec_eval (pytrec_eval) semantics
    qrels_iter = ir_measures.read_trec_qrels(str(offline_data / "dev600" / "qrels.txt"))
    run_iter = ir_measures.read_trec_run(str(offline_data / "dev600" / "run.bm25.trec"))
    direct = ir_measures.calc_aggregate([ir_measures.parse_measure("RR@10"), ir_measures.parse_measure("nDCG@10")],
                                        qrels_iter, run_iter)  # fmt: skip
    ours = ir_measures_scores(qrels, run, ["nDCG@10"])
    assert direct[ir_measures.parse_measure("RR@10")] == pytest.approx(official, abs=1e-12)
    assert direct[ir_measures.parse_measure("nDCG@10")] == pytest.approx(ours["nDCG@10"], abs=1e-12)


def test_a_streamed_run_evaluated_in_small_batches_gives_the_dicts_numbers(offline_data, monkeypatch):
    qrels = read_qrels(offline_data / "dev600" / "qrels.txt")
    path = offline_data / "dev600" / "run.bm25.trec"
    whole = evaluate(qrels, read_run(path), ["nDCG@10", "R@1000"])
    monkeypatch.setattr(metrics, "QUERIES_PER_CALL", 7)  # 600 queries in 86 calls to ir_measures
    streamed = evaluate(qrels, iter_run(path), ["nDCG@10", "R@1000"])
    assert streamed == whole  # every float equal, not close: the sums run in the qrels' order either way
    assert (whole.queries_ranked, whole.queries_missing) == (600, 0)


def write_run(path, queries: int, depth: int = 200):
    with open(path, "w") as out:
        out.writelines(f"q{q} Q0 d{q}_{r} {r} {1000 - r} bm25\n" for q in range(queries) for r in range(1, depth + 1))
    return {f"q{q}": {f"d{q}_3": 1} for q in range(queries)}


def peak_bytes(work, *args):
    """(work(*args), the peak of the Python heap while it ran)."""
    tracemalloc.start()
    try:
        return work(*args), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_evaluating_a_streamed_run_holds_a_batch_not_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "QUERIES_PER_CALL", 20)
    peaks, results = [], []
    for queries in (40, 400):
        qrels = write_run(tmp_path / f"{queries}.trec", queries)
        result, peak = peak_bytes(evaluate, qrels, iter_run(tmp_path / f"{queries}.trec"))
        results.append(result)
        peaks.append(peak)
    assert [r.mrr_at_10 for r in results] == pytest.approx([1 / 3, 1 / 3])
    assert peaks[1] < 1.5 * peaks[0], peaks  # 10x the run, about the same peak (read_run's dict: ~10x)


def test_a_run_in_any_order_is_evaluated_as_its_grouped_copy(offline_data, tmp_path, capsys):
    """As trec_eval reads it: the real dev600 BM25 run with its queries' lines dealt out round-robin."""
    lines = (offline_data / "dev600" / "run.bm25.trec").read_text().splitlines(keepends=True)[:2000]
    grouped, mixed = tmp_path / "grouped.trec", tmp_path / "mixed.trec"
    grouped.write_text("".join(lines))
    mixed.write_text("".join("".join(lines[i::7]) for i in range(7)))
    qrels = str(offline_data / "dev600" / "qrels.txt")
    assert main(["--qrels", qrels, "--run", str(grouped)]) == 0
    expected = capsys.readouterr().out
    assert main(["--qrels", qrels, "--run", str(mixed)]) == 0
    assert capsys.readouterr().out == expected and "MRR @10: 0." in expected
