import gzip
import json

from reranker.first_stage.demo_data import write_demo_slice
from reranker.io.qrels import read_qrels
from reranker.io.queries import read_queries
from reranker.io.runs import read_run


def hub_row(i):
    return {
        "query_id": str(i),
        "query": f"query  {i}",
        "positive_passages": [{"docid": f"p{i}", "title": "", "text": f"positive {i}"}],
        "negative_passages": [{"docid": f"n{i}-{j}", "title": "-", "text": f"negative {i} {j}"} for j in range(5)],
    }


def test_demo_slice_layout(tmp_path):
    write_demo_slice((hub_row(i) for i in range(100)), tmp_path, n_train=3, n_eval=2)
    with gzip.open(tmp_path / "train.jsonl.gz", "rt") as rows:
        assert [json.loads(r)["query_id"] for r in rows] == ["0", "1", "2"]
    assert read_queries(str(tmp_path / "eval" / "queries.tsv")) == {"3": "query 3", "4": "query 4"}
    assert read_qrels(tmp_path / "eval" / "qrels.txt") == {"3": {"p3": 1}, "4": {"p4": 1}}
    run = read_run(tmp_path / "eval" / "run.shuffled.trec")
    assert sorted(e.docid for e in run["3"]) == ["n3-0", "n3-1", "n3-2", "n3-3", "n3-4", "p3"]
    assert [e.rank for e in run["3"]] == [1, 2, 3, 4, 5, 6]
    with gzip.open(tmp_path / "corpus.jsonl.gz", "rt") as rows:
        assert len([json.loads(r) for r in rows]) == 12
