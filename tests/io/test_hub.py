from reranker.io.hub import is_hub_name, select_split_files

TEVATRON = ["README.md", "msmarco-passage.py", "train.jsonl.gz", "dev.jsonl.gz", "dl19.jsonl.gz"]


def test_split_files_by_name():
    assert select_split_files(TEVATRON, "train") == ["train.jsonl.gz"]
    assert select_split_files(TEVATRON, "dev") == ["dev.jsonl.gz"]
    assert select_split_files(TEVATRON, "test") == []


def test_unsplit_repository_is_the_train_split():
    assert select_split_files(["corpus.jsonl.gz", "README.md"], "train") == ["corpus.jsonl.gz"]
    assert select_split_files(["corpus.jsonl.gz"], "dev") == []


def test_parquet_export_layout_and_jsonl_preference():
    export = ["default/train/0000.parquet", "default/train/0001.parquet", "default/dev/0000.parquet"]
    assert select_split_files(export, "train") == ["default/train/0000.parquet", "default/train/0001.parquet"]
    assert select_split_files(["train.jsonl.gz", "data/train-00000.parquet"], "train") == ["train.jsonl.gz"]


def test_hub_names_versus_local_paths(tmp_path):
    assert is_hub_name("Tevatron/msmarco-passage")
    assert not is_hub_name("data/train.jsonl.gz")  # a missing local file is reported as such, not looked up
    assert not is_hub_name("data_script.py")
    local = tmp_path / "x"
    local.mkdir()
    assert not is_hub_name(str(local))
