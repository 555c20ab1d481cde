"""Gradient caching gives the loss and gradients of the one big batch, sub-batch by sub-batch."""

from __future__ import annotations

import gzip
import itertools

import pytest
import torch

from reranker import train
from reranker.model.loading import load_cross_encoder
from reranker.model.pair_encoding import PairEncoder
from reranker.training.collator import GroupedTrainCollator
from reranker.training.dataset import TrainGroup
from reranker.training.grad_cache import RandomState, cached_gradient_step
from reranker.training.losses import RankingLoss, as_groups

TEXTS = ["paris is the capital of france", "berlin", "a b c d e f g h i j k l", "the eiffel tower", "x",
         "rome is in italy and it is old", "lyon", "marseille is a port on the mediterranean sea"]  # fmt: skip
GROUPS = [TrainGroup(query, [("", TEXTS[(i + j) % len(TEXTS)]) for j in range(8)], [float((i * j) % 5) for j in
                                                                                      range(8)])
          for i, query in enumerate(["capital of france", "cities", "letters", "paris landmark"])]  # fmt: skip


def gradients(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


CACHING_CASES = [("lce", None, None), ("lce,kl", "1,0.5", None), ("kl", None, "segment_cosine")]


@pytest.mark.parametrize(("loss_names", "weights", "score_head"), CACHING_CASES)
def test_sub_batches_give_the_big_batch_loss_and_gradients(
    tokenizer, tiny_model_without_dropout, loss_names, weights, score_head
):
    loss = RankingLoss.parse(loss_names, weights, temperature=2.0)
    encoder = PairEncoder(tokenizer, 16, 64)
    model = load_cross_encoder(str(tiny_model_without_dropout), score_head=score_head).train()
    big = GroupedTrainCollator(encoder)(GROUPS)
    teacher = as_groups(big.pop("teacher_scores"), 8)
    expected = loss(as_groups(model(**big).logits, 8), teacher)
    expected.backward()
    expected_gradients = gradients(model)
    model.zero_grad()
    cached = GroupedTrainCollator(encoder, pairs_per_forward=5)(GROUPS)  # 32 pairs, longest first
    sizes = [len(b["input_ids"]) for b in cached["buckets"]]
    assert sum(sizes) == 32 and max(sizes) <= 5 and len(sizes) >= 7
    value = cached_gradient_step(model, cached["buckets"], cached["restore"],
                                 lambda logits: loss(as_groups(logits, 8), teacher))  # fmt: skip
    assert value.item() == pytest.approx(expected.item(), abs=1e-5)
    for name, grad in gradients(model).items():
        torch.testing.assert_close(grad, expected_gradients[name], atol=1e-5, rtol=1e-4, msg=name)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda), pytest.param("DataParallel", marks=pytest.mark.cuda)]


def model_on(device_name: str, model_dir, request) -> tuple[torch.nn.Module, torch.device]:
    """The model on the CPU, on the first GPU, or replicated on every GPU by nn.DataParallel (skipped with one)."""
    if device_name == "cpu":
        return load_cross_encoder(str(model_dir)), torch.device("cpu")
    device = request.getfixturevalue("cuda_device")
    model = load_cross_encoder(str(model_dir)).to(device)
    if device_name == "DataParallel":
        if torch.cuda.device_count() < 2:
            pytest.skip("nn.DataParallel needs 2 GPUs")
        model = torch.nn.DataParallel(model)
    return model, device


@pytest.mark.parametrize("device_name", DEVICES)
def test_with_dropout_on_the_gradients_are_those_of_the_same_masks_in_one_graph(
    tokenizer, tiny_model_dir, device_name, request
):
    """Dropout on: the cached step's second pass must draw the masks of its first. The big batch it is compared
    with runs the same sub-batches from the same random state in one graph (one big forward would draw other
    masks); without the replay (or with only the CPU's state replayed, on a GPU; or only the first GPU's, under
    nn.DataParallel) this test fails."""
    model, device = model_on(device_name, tiny_model_dir, request)
    model.train()  # dropout 0.1
    loss = RankingLoss.parse("lce", None)
    cached = GroupedTrainCollator(PairEncoder(tokenizer, 16, 64), pairs_per_forward=5)(GROUPS)
    buckets = [{k: v.to(device) for k, v in bucket.items()} for bucket in cached["buckets"]]
    restore, teacher = cached["restore"].to(device), as_groups(cached["teacher_scores"].to(device), 8)
    torch.manual_seed(11)
    logits = torch.cat([model(**bucket).logits for bucket in buckets])[restore]
    expected = loss(as_groups(logits, 8), teacher)
    expected.backward()
    expected_gradients = gradients(model)
    model.zero_grad()
    torch.manual_seed(11)
    value = cached_gradient_step(model, buckets, restore, lambda logits: loss(as_groups(logits, 8), teacher))
    assert value.item() == pytest.approx(expected.item(), abs=1e-5)
    for name, grad in gradients(model).items():
        torch.testing.assert_close(grad, expected_gradients[name], atol=1e-5, rtol=1e-4, msg=name)


def test_replay_draws_the_same_dropout_masks(tokenizer, tiny_model_dir):
    model = load_cross_encoder(str(tiny_model_dir)).train()  # dropout 0.1
    batch = GroupedTrainCollator(PairEncoder(tokenizer, 16, 64))(GROUPS[:1])
    batch.pop("teacher_scores")
    state = RandomState()
    first = model(**batch).logits
    after = torch.get_rng_state()
    with state.replay():
        again = model(**batch).logits
    assert torch.equal(first, again) and torch.equal(torch.get_rng_state(), after)
    assert not torch.equal(model(**batch).logits, first)  # a fresh draw differs: dropout is on


@pytest.mark.slow
def test_training_with_caching_equals_training_without(tiny_model_without_dropout, offline_data, tmp_path):
    data = tmp_path / "train.jsonl"
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        data.write_text("".join(itertools.islice(rows, 8)))
    flags = {"model_name_or_path": str(tiny_model_without_dropout), "dataset_name": str(data), "train_n_passages": 8,
             "p_max_len": 48, "per_device_train_batch_size": 2, "gradient_accumulation_steps": 2, "max_steps": 2,
             "optim": "sgd", "learning_rate": 0.05, "seed": 3, "disable_tqdm": True}  # fmt: skip
    plain = train(output_dir=str(tmp_path / "plain"), **flags)
    cached = train(output_dir=str(tmp_path / "cached"), pairs_per_forward=3, **flags)
    a, b = (load_cross_encoder(str(folder)).state_dict() for folder in (plain, cached))
    assert any(not torch.equal(a[name], load_cross_encoder(str(tiny_model_without_dropout)).state_dict()[name])
               for name in a)  # it trained  # fmt: skip
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5, msg=name)


class FakeGpus:
    """`count` GPUs' random generators in place of CUDA's (`torch.cuda.get_rng_state_all` and `set_rng_state_all`
    run on them): a state is (device, draws so far); `draw` is a forward pass drawing on every GPU, as
    nn.DataParallel's replicas do."""

    def __init__(self, monkeypatch, count: int) -> None:
        self.states = [torch.tensor([device, 0]) for device in range(count)]
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        for module in (torch.cuda, torch.cuda.random):  # torch.cuda's names, and those get/set_rng_state_all call
            monkeypatch.setattr(module, "device_count", lambda: count)
            monkeypatch.setattr(module, "get_rng_state", lambda device="cuda": self.states[self.index(device)].clone())
            monkeypatch.setattr(module, "set_rng_state", self.set_state)

    @staticmethod
    def index(device: int | str | torch.device) -> int:
        device = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        return device.index or 0

    def set_state(self, state: torch.Tensor, device: int | str | torch.device = "cuda") -> None:
        self.states[self.index(device)] = state.clone()

    def draw(self) -> list[list[int]]:
        """The states drawn from, each GPU's then moved on."""
        drawn = [state.tolist() for state in self.states]
        for state in self.states:
            state[1] += 1
        return drawn


def test_replay_restores_every_gpus_random_state(monkeypatch):
    gpus = FakeGpus(monkeypatch, 3)
    state = RandomState()
    first = gpus.draw()
    after = [s.tolist() for s in gpus.states]
    with state.replay():
        assert gpus.draw() == first == [[0, 0], [1, 0], [2, 0]]
    assert [s.tolist() for s in gpus.states] == after


def test_cached_step_replays_every_gpus_random_state(tokenizer, tiny_model_without_dropout, monkeypatch):
    """The second pass of each sub-batch draws from the GPUs' states its first pass drew from, on every GPU (the
    model, on the CPU here, stands for nn.DataParallel's replicas: a forward pass draws on each GPU); replaying
    only the model's device, or none, fails this test."""
    gpus = FakeGpus(monkeypatch, 2)
    model = load_cross_encoder(str(tiny_model_without_dropout)).train()
    drawn = []
    model.register_forward_hook(lambda *_: drawn.append(gpus.draw()))
    cached = GroupedTrainCollator(PairEncoder(tokenizer, 16, 64), pairs_per_forward=8)(GROUPS)
    loss = RankingLoss.parse("lce", None)
    teacher = as_groups(cached["teacher_scores"], 8)
    cached_gradient_step(
        model, cached["buckets"], cached["restore"], lambda logits: loss(as_groups(logits, 8), teacher)
    )
    buckets = len(cached["buckets"])
    assert buckets >= 4 and len(drawn) == 2 * buckets
    assert drawn[buckets:] == drawn[:buckets]
    assert [s.tolist() for s in gpus.states] == [[0, buckets], [1, buckets]]  # as after the first pass
