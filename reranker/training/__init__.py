"""The training stage: arguments, query groups, collator, losses, the Trainer, evaluation while training."""
