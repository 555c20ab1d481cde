import json

import pytest

from reranker.io.errors import InputError


def test_data_script_loads_the_rerank_schema(tmp_path):
    import data_script

    path = tmp_path / "in.jsonl"
    rows = [
        {"query_id": "1", "query": "q", "docid": "a", "title": "T", "text": "x", "score": 2.5},
        {"query_id": "1", "query": "q", "docid": "b", "text": "y"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = data_script.load_rerank_dataset(path, cache_dir=str(tmp_path / "cache"))
    assert dataset.features == data_script.rerank_features()
    assert dataset[0] == rows[0]
    assert dataset[1] == {**rows[1], "title": "", "score": 0.0}
    path.write_text(json.dumps(rows[0]) + "\n" + '{"query_id": "1"}\n')
    with pytest.raises(InputError, match=r"in\.jsonl:2: missing field 'query'"):
        data_script.load_rerank_dataset(path, cache_dir=str(tmp_path / "cache"))
