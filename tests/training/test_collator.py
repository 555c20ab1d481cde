import torch

from reranker.model.loading import load_cross_encoder
from reranker.model.pair_encoding import PairEncoder
from reranker.training.collator import GroupedTrainCollator
from reranker.training.dataset import TrainGroup

GROUPS = [
    TrainGroup("what is the capital of france", [("", "paris is the capital"), ("", "berlin"), ("", "a b c d e")]),
    TrainGroup("cat", [("Cats", "cats are animals that purr"), ("", "dogs bark"), ("", "x")]),
]


def test_collator_keeps_groups_contiguous_and_pads_dynamically(tokenizer):
    encoder = PairEncoder(tokenizer, 16, 128)
    batch = GroupedTrainCollator(encoder)(GROUPS)
    assert batch["input_ids"].shape == (6, 16)  # longest pair is 11 tokens -> 16
    first = tokenizer(GROUPS[0].query, GROUPS[0].passages[0][1])
    padding = [0] * (16 - len(first["input_ids"]))
    assert batch["input_ids"][0].tolist() == first["input_ids"] + padding
    assert batch["token_type_ids"][0].tolist() == first["token_type_ids"] + padding
    assert batch["attention_mask"][0].tolist() == [1] * len(first["input_ids"]) + padding
    assert batch["attention_mask"].sum(dim=1).tolist()[3] == len(
        tokenizer("cat", "Cats cats are animals that purr")["input_ids"]
    )
    fixed = GroupedTrainCollator(encoder, pad_to_max_length=True)(GROUPS)
    assert fixed["input_ids"].shape == (6, 144)


def test_length_buckets_restore_group_order(tokenizer, tiny_model_dir):
    encoder = PairEncoder(tokenizer, 16, 128)
    bucketed = GroupedTrainCollator(encoder, length_buckets=3)(GROUPS)  # pair lengths 13 10 14 10 6 5
    widths = [bucket["input_ids"].shape[1] for bucket in bucketed["buckets"]]
    assert widths == [16, 16, 8] and sum(b["input_ids"].shape[0] for b in bucketed["buckets"]) == 6
    model = load_cross_encoder(str(tiny_model_dir)).eval()
    with torch.no_grad():
        whole = model(**GroupedTrainCollator(encoder)(GROUPS)).logits
        parts = torch.cat([model(**bucket).logits for bucket in bucketed["buckets"]])[bucketed["restore"]]
    torch.testing.assert_close(parts, whole, atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_the_logits(tokenizer, tiny_model_dir):
    model = load_cross_encoder(str(tiny_model_dir)).eval()
    encoder = PairEncoder(tokenizer, 16, 128)
    with torch.no_grad():
        dynamic = model(**GroupedTrainCollator(encoder)(GROUPS)).logits
        fixed = model(**GroupedTrainCollator(encoder, pad_to_max_length=True)(GROUPS)).logits
    torch.testing.assert_close(dynamic, fixed, atol=1e-5, rtol=1e-5)


def test_pairs_per_forward_caps_pairs_and_padded_tokens(tokenizer):
    encoder = PairEncoder(tokenizer, 16, 128)
    groups = [TrainGroup("q", [("", " ".join(["word"] * n)) for n in (100, 90, 60, 3, 3, 3, 3, 3)])]
    lengths = [n + 4 for n in (100, 90, 60, 3, 3, 3, 3, 3)]  # [CLS] q [SEP] ... [SEP]
    padded = [-(-n // 8) * 8 for n in lengths]  # 104 96 64 8 8 8 8 8: mean 38
    batch = GroupedTrainCollator(encoder, pairs_per_forward=4)(groups)
    # a budget of 4 x 38 = 152 padded tokens: 104 alone, 96 alone, 64 x 2 (with an 8), then 4 x 8 (the pair cap)
    assert [tuple(b["input_ids"].shape) for b in batch["buckets"]] == [(1, 104), (1, 96), (2, 64), (4, 8)]
    assert sum(padded) / len(padded) == 38
    whole = GroupedTrainCollator(encoder)(groups)["input_ids"]
    parts = torch.nn.utils.rnn.pad_sequence(
        [row for b in batch["buckets"] for row in b["input_ids"]], batch_first=True
    )
    assert torch.equal(parts[batch["restore"]][:, :8], whole[:, :8])  # the same pairs, back in group order
