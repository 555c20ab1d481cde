import gzip
import itertools
import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, Trainer, TrainerCallback

from reranker import train
from reranker.cli.train import main as train_main
from reranker.io.errors import InputError, ParameterError, UsageError
from reranker.model.arguments import ModelArguments
from reranker.training.arguments import RerankerTrainingArguments, TrainDataArguments
from reranker.training.driver import build_trainer, resolve_resume_checkpoint


@pytest.fixture(scope="module")
def train_file(tmp_path_factory, offline_data):
    """The first 10 real training queries: with 4 groups a batch, every epoch ends on a partial batch of 2."""
    path = tmp_path_factory.mktemp("data") / "train10.jsonl"
    with gzip.open(offline_data / "train.jsonl.gz", "rt") as rows:
        path.write_text("".join(itertools.islice(rows, 10)))
    return path


def arguments(
    model_dir, train_file, output_dir, pad_to_max_length=False, length_buckets=4, score_head=None, **overrides
):
    training = {
        "output_dir": str(output_dir), "per_device_train_batch_size": 4, "learning_rate": 1e-3, "max_steps": 6,
        "save_steps": 2, "logging_steps": 1, "seed": 7, "report_to": "none", "disable_tqdm": True,
        "dataloader_pin_memory": False, **overrides,
    }  # fmt: skip
    return (
        ModelArguments(model_name_or_path=str(model_dir), score_head=score_head),
        TrainDataArguments(
            dataset_name=str(train_file),
            train_n_passages=4,
            q_max_len=16,
            p_max_len=64,
            pad_to_max_length=pad_to_max_length,
            length_buckets=length_buckets,
        ),  # fmt: skip
        RerankerTrainingArguments(**training),
    )


class StopAtStep(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt("simulated kill")


def weights(path):
    return AutoModelForSequenceClassification.from_pretrained(path).state_dict()


def test_train_saves_a_loadable_model_and_tokenizer(tiny_model_dir, train_file, tmp_path):
    out = tmp_path / "model"
    train(*arguments(tiny_model_dir, train_file, out, max_steps=3, save_steps=100))  # 10 queries / 4: 3 steps/epoch
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.num_labels == 1
    assert (out / "tokenizer.json").is_file()
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [round(h["epoch"], 3) for h in history if "loss" in h] == [0.333, 0.667, 1.0]  # last step: 2 groups
    assert all(0 < h["loss"] < 5 for h in history if "loss" in h)


def test_segment_cosine_head_trains_its_cross_bias_and_saves_without_dropout(tiny_model_dir, train_file, tmp_path):
    from reranker.model.segment_cosine import BertForSegmentCosine

    out = tmp_path / "model"
    train(*arguments(tiny_model_dir, train_file, out, max_steps=2, save_steps=100, score_head="segment_cosine",
                     dropout=0.0))  # fmt: skip
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert isinstance(model, BertForSegmentCosine)
    assert (model.config.hidden_dropout_prob, model.config.attention_probs_dropout_prob) == (0.0, 0.0)
    moved = (model.cross_bias + 4.0).abs()
    assert moved.min() > 0 and moved.max() < 0.01  # learned (lr 1e-3, 2 steps), from its start at -4
    assert "import reranker" in (out / "README.md").read_text()  # CrossEncoder needs the class registered


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tiny_model_dir, train_file, tmp_path):
    uninterrupted = tmp_path / "a"
    train(*arguments(tiny_model_dir, train_file, uninterrupted))
    resumed = tmp_path / "b"
    model_args, data_args, training_args = arguments(tiny_model_dir, train_file, resumed)
    trainer = build_trainer(model_args, data_args, training_args)
    trainer.add_callback(StopAtStep(3))
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert resolve_resume_checkpoint(training_args) == str(resumed / "checkpoint-2")
    train(*arguments(tiny_model_dir, train_file, resumed))  # same command again: resumes from checkpoint-2
    a, b = weights(uninterrupted), weights(resumed)
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5, msg=name)
    untrained = weights(tiny_model_dir)
    assert not torch.allclose(a["classifier.weight"], untrained["classifier.weight"])


def losses(output_dir):
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [h["loss"] for h in history if "loss" in h]


@pytest.mark.slow
def test_dynamic_padding_gives_the_same_loss_curve(tiny_model_without_dropout, train_file, tmp_path):
    """Padding must not change the math. (With dropout on, masks are drawn for differently shaped tensors,
    so curves then agree only statistically; this model has no dropout.)"""
    train(*arguments(tiny_model_without_dropout, train_file, tmp_path / "buckets", save_steps=100))
    train(*arguments(tiny_model_without_dropout, train_file, tmp_path / "dynamic", length_buckets=1, save_steps=100))
    train(*arguments(tiny_model_without_dropout, train_file, tmp_path / "fixed", True, save_steps=100))
    buckets, dynamic, fixed = (losses(tmp_path / name) for name in ("buckets", "dynamic", "fixed"))
    assert len(buckets) == 6 and buckets[0] != buckets[-1]
    assert buckets == pytest.approx(fixed, abs=1e-4)
    assert dynamic == pytest.approx(fixed, abs=1e-4)


def test_fixed_padding_without_the_last_partial_batch_gives_every_step_one_shape(tiny_model_dir, train_file,
                                                                                tmp_path):  # fmt: skip
    """The one shape --torch_compile wants: every pair padded to q_max_len + p_max_len, and the epoch's last step
    (2 of the 10 queries, at 4 groups a step) dropped by --dataloader_drop_last."""
    trainer = build_trainer(*arguments(tiny_model_dir, train_file, tmp_path, True, dataloader_drop_last=True))
    loader, shapes = trainer.get_train_dataloader(), []
    for epoch in range(2):
        loader.set_epoch(epoch)
        shapes += [tuple(batch["input_ids"].shape) for batch in loader]
    assert shapes == [(16, 80)] * 4


class GradientsBeforeStep(TrainerCallback):
    """Each step's gradients, copied before the optimizer steps."""

    def __init__(self):
        self.steps = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.steps.append({name: p.grad.detach().clone() for name, p in model.named_parameters()})


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_compiled_training_gives_the_eager_losses_and_gradients(tiny_model_without_dropout, train_file, tmp_path,
                                                                backend, fresh_dynamo):  # fmt: skip
    """--torch_compile with one shape: one graph for 3 steps (the third starts epoch 2: the partial batch is
    dropped), the eager losses and gradients. aot_eager runs the traced graphs on the eager kernels (exact on this
    CPU); inductor's fused fp32 kernels sum in another order: up to 7e-5 of the step's largest gradient here,
    1e-3 allowed, while a wrong gradient (a term cut off at a graph break, a loss scaled twice) errs by its size.
    Inductor's first compile (no cache) takes ~40 s on 2 CPU cores."""
    from torch._dynamo.utils import counters

    runs = {}
    for compiled in (False, True):
        counters.clear()
        flags = {"torch_compile_backend": backend} if compiled else {}
        trainer = build_trainer(*arguments(tiny_model_without_dropout, train_file, tmp_path / str(compiled), True,
                                           max_steps=3, save_strategy="no", dataloader_drop_last=True,
                                           **flags))  # fmt: skip
        gradients = GradientsBeforeStep()
        trainer.add_callback(gradients)
        trainer.train()
        assert isinstance(trainer.model_wrapped, torch._dynamo.eval_frame.OptimizedModule) == compiled
        assert counters["stats"]["unique_graphs"] == compiled
        runs[compiled] = [h["loss"] for h in trainer.state.log_history if "loss" in h], gradients.steps
    (eager_losses, eager), (compiled_losses, compiled) = runs[False], runs[True]
    assert len(compiled_losses) == 3 and compiled_losses == pytest.approx(eager_losses, rel=1e-5)
    for step, expected in enumerate(eager):
        largest = max(grad.abs().max().item() for grad in expected.values())
        error = max((compiled[step][name] - grad).abs().max().item() for name, grad in expected.items())
        assert error <= 1e-3 * largest, (step, error, largest)


def test_non_empty_output_dir_without_checkpoint_is_refused(tiny_model_dir, train_file, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    *_, training_args = arguments(tiny_model_dir, train_file, tmp_path)
    with pytest.raises(UsageError, match="not empty and holds no checkpoint"):
        resolve_resume_checkpoint(training_args)
    *_, overwrite = arguments(tiny_model_dir, train_file, tmp_path, overwrite_output_dir=True)
    assert resolve_resume_checkpoint(overwrite) is None


def test_cached_training_step_with_dropout_gives_the_gradients_of_one_graph(tiny_model_dir, train_file, tmp_path):
    """The Trainer's cached step, dropout on, gives the gradients of its sub-batches run in one graph from the same
    random state (`compute_loss`'s path for buckets): each sub-batch's second pass draws its first pass's masks.
    Without the replay of the random state in `cached_gradient_step` this fails."""
    trainer = build_trainer(*arguments(tiny_model_dir, train_file, tmp_path, pairs_per_forward=5))
    model = trainer.model.train()
    assert model.config.hidden_dropout_prob == 0.1
    inputs = trainer.data_collator([trainer.train_dataset[index] for index in range(4)])  # 16 pairs
    assert len(inputs["buckets"]) >= 4
    trainer.current_gradient_accumulation_steps = 1  # train() sets it each step
    torch.manual_seed(5)
    trainer.compute_loss(model, dict(inputs)).backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    torch.manual_seed(5)
    trainer.training_step(model, dict(inputs))
    cached = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert cached.keys() == expected.keys()
    for name, grad in cached.items():
        torch.testing.assert_close(grad, expected[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize(("flag", "engine"), [("is_deepspeed_enabled", "DeepSpeed"), ("is_fsdp_enabled", "FSDP")])
def test_gradient_caching_is_refused_under_deepspeed_and_fsdp(tiny_model_dir, train_file, tmp_path, monkeypatch,
                                                              capsys, flag, engine):  # fmt: skip
    """DeepSpeed and FSDP own the backward pass: --pairs_per_forward is refused in one line (the Trainer's flag
    is set as its accelerator would set it for `--deepspeed`, `--fsdp` or `accelerate launch`'s config)."""
    create = Trainer.create_accelerator_and_postprocess

    def with_engine(self):
        create(self)
        setattr(self, flag, True)

    monkeypatch.setattr(Trainer, "create_accelerator_and_postprocess", with_engine)
    flags = ["--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(train_file), "--output_dir",
             str(tmp_path), "--train_n_passages", "4", "--max_steps", "1", "--pairs_per_forward", "5"]  # fmt: skip
    assert train_main(flags) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --pairs_per_forward (gradient caching) does not work under {engine}, which runs the "
                      "backward pass itself; train with DDP (torchrun) or without --pairs_per_forward"]  # fmt: skip
    assert not (tmp_path / "model.safetensors").exists()


def test_flag_validation():
    with pytest.raises(UsageError, match="train_n_passages must be >= 2"):
        TrainDataArguments(dataset_name="x.jsonl", train_n_passages=1)
    with pytest.raises(UsageError, match="q_max_len must be >= 1"):
        TrainDataArguments(dataset_name="x.jsonl", q_max_len=0)
    with pytest.raises(UsageError, match="warmup_ratio"):
        RerankerTrainingArguments(output_dir="x", warmup_ratio=1.5)


@pytest.mark.parametrize("loss", ["kl", "mse"])
def test_a_teacher_loss_on_data_without_scores_stops_at_startup(tiny_model_dir, train_file, tmp_path, loss):
    with pytest.raises(ParameterError, match=rf"^loss {loss} needs teacher scores, and .*train10\.jsonl has passages "
                       "without a 'score'"):  # fmt: skip
        build_trainer(*arguments(tiny_model_dir, train_file, tmp_path / "out", loss=loss))


def test_fp16_without_gpu_falls_back_to_fp32():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: fp16 is used")
    args = RerankerTrainingArguments(output_dir="x", fp16=True)
    assert not args.fp16 and args.warmup_steps == 0.1


def test_bad_training_row_names_file_and_line(tiny_model_dir, tmp_path):
    from reranker.io.train_rows import load_train_dataset

    good = {"query_id": "1", "query": "q", "positive_passages": [{"docid": "a", "text": "p"}],
            "negative_passages": [{"docid": "b", "text": "n"}]}  # fmt: skip
    bad = {**good, "negative_passages": [{"docid": "b", "text": ""}]}
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InputError, match=r"train\.jsonl:2: negative_passages\[0\]: field 'text' is empty"):
        load_train_dataset(str(path), cache_dir=str(tmp_path / "cache"))
