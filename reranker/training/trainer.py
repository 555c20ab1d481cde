"""A Trainer that feeds whole query groups, optimises a ranking loss (the grouped softmax by default), with
gradient caching for large groups, and evaluates by reranking."""

from __future__ import annotations

import torch
from transformers import Trainer

from reranker.io.errors import ParameterError
from reranker.model.backbone import ScoreHead, write_head_record
from reranker.model.precision import autocast_dtype, precision_name
from reranker.training.arguments import sampling_seed
from reranker.training.dataset import EpochShuffleSampler
from reranker.training.evaluation import RerankEvaluator
from reranker.training.grad_cache import cached_gradient_step
from reranker.training.losses import RankingLoss, as_groups


class RerankerTrainer(Trainer):
    """transformers' Trainer with a ranking loss over query groups (`RankingLoss`, LCE by default), a sampler that
    tells the dataset the epoch, gradient caching when the collator caps the pairs per forward pass, and
    (optionally) evaluation by reranking a rerank file: `eval_mrr_at_10` and `eval_ndcg_at_10` are logged next to
    the loss and can pick the best checkpoint (`--load_best_model_at_end`)."""

    def __init__(
        self,
        *args,
        group_size: int,
        score_head: ScoreHead | None = None,
        loss: RankingLoss | None = None,
        rerank_evaluator: RerankEvaluator | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group_size = group_size
        self.score_head = score_head or ScoreHead(None)
        self.loss = loss or RankingLoss()
        self.rerank_evaluator = rerank_evaluator
        # Our loss is a mean over the groups of a micro-batch and ignores `num_items_in_batch`, so the Trainer
        # must divide it by the accumulation steps (it skips that for models that take loss kwargs).
        self.model_accepts_loss_kwargs = False

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()
        self._refuse_caching_under_engines()

    def _refuse_caching_under_engines(self) -> None:
        """Refuse `pairs_per_forward` under DeepSpeed or FSDP (the Trainer's flags cover its arguments and
        `accelerate launch`'s config): their engines own the backward pass, reducing or resharding gradients at
        each backward (ZeRO refuses `no_sync`), so one backward a sub-batch with one reduction a step, and the replay
        of the random state around it, cannot be made right there."""
        if getattr(self.args, "pairs_per_forward", None) and (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            engine = "DeepSpeed" if self.is_deepspeed_enabled else "FSDP"
            raise ParameterError(
                f"{{0}} (gradient caching) does not work under {engine}, which runs the backward pass itself; train "
                "with DDP (torchrun) or without {0}", "pairs_per_forward",
            )  # fmt: skip

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Save as the Trainer does (an adapter folder under LoRA), plus a decoder's head record: every checkpoint
        can be scored as it is."""
        super()._save(output_dir, state_dict)
        write_head_record(output_dir or self.args.output_dir, self.score_head)

    def _get_train_sampler(self, train_dataset=None) -> EpochShuffleSampler:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochShuffleSampler(len(dataset), sampling_seed(self.args))

    def _loss_of(self, logits: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
        """The loss of a step's logits, in group order (fp32 whatever the logits' dtype)."""
        groups = as_groups(logits, self.group_size)
        return self.loss(groups, None if teacher is None else as_groups(teacher, self.group_size))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher = inputs.pop("teacher_scores", None)
        if "buckets" in inputs:  # length-sorted sub-batches: one forward each, logits back in group order
            logits = torch.cat([model(**bucket).logits for bucket in inputs["buckets"]])[inputs["restore"]]
        else:
            logits = model(**inputs).logits
        loss = self._loss_of(logits, teacher)
        return (loss, {"logits": logits}) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        if not getattr(self.data_collator, "pairs_per_forward", None):
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        inputs = self._prepare_inputs(inputs)
        teacher = inputs.pop("teacher_scores", None)
        steps = self.current_gradient_accumulation_steps  # the Trainer's own scaling, as in its training_step
        with self.compute_loss_context_manager():
            return cached_gradient_step(
                model, inputs["buckets"], inputs["restore"], lambda logits: self._loss_of(logits, teacher) / steps,
                backward=self.accelerator.backward, no_sync=lambda: self.accelerator.no_sync(model),
            )  # fmt: skip

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if self.rerank_evaluator is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        dtype = autocast_dtype(precision_name(self.args.fp16, self.args.bf16), self.args.device)
        scores = self.rerank_evaluator(model, self.args.device, dtype)
        model.train(was_training)
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in scores.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics=metrics)
        return metrics
