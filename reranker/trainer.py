"""A Trainer that feeds whole query groups and optimises the grouped softmax loss."""

from __future__ import annotations

from transformers import Trainer

from reranker.modeling import grouped_softmax_loss
from reranker.train_dataset import EpochShuffleSampler


class RerankerTrainer(Trainer):
    """transformers' Trainer with the grouped loss and a sampler that tells the dataset the epoch."""

    def __init__(self, *args, group_size: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.group_size = group_size
        # Our loss is a mean over the groups of a micro-batch and ignores `num_items_in_batch`, so the Trainer
        # must divide it by the accumulation steps (it skips that for models that take loss kwargs).
        self.model_accepts_loss_kwargs = False

    def _get_train_sampler(self, train_dataset=None) -> EpochShuffleSampler:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return EpochShuffleSampler(
            len(dataset), self.args.data_seed if self.args.data_seed is not None else self.args.seed
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss = grouped_softmax_loss(outputs.logits, self.group_size)
        return (loss, outputs) if return_outputs else loss
