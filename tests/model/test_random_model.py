from transformers import AutoConfig

from reranker.cli.random_model import main
from reranker.model.loading import load_cross_encoder


def test_random_model_has_the_asked_shape_and_the_tokenizer(minilm_path, tmp_path, capsys):
    assert main(["--tokenizer", str(minilm_path), "--output", str(tmp_path / "m"), "--layers", "3", "--hidden", "64",
                 "--heads", "4"]) == 0  # fmt: skip
    config = AutoConfig.from_pretrained(tmp_path / "m")
    shape = (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size)
    assert shape == (3, 64, 4, 256) and config.num_labels == 1 and config.vocab_size == 30522
    assert (tmp_path / "m" / "tokenizer.json").is_file()
    assert load_cross_encoder(str(tmp_path / "m")).num_parameters() > 0
    assert "random 3-layer, hidden-64 BERT" in capsys.readouterr().out


def test_random_model_rejects_heads_that_do_not_divide_the_hidden_size(minilm_path, tmp_path, capsys):
    assert main(["--tokenizer", str(minilm_path), "--output", str(tmp_path / "m"), "--hidden", "100"]) == 2
    assert "hidden divisible by heads, got 12 100 12" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
