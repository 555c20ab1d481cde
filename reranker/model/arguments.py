"""Arguments shared by training and inference: which model to load and how pairs are encoded (flag names are the
reference's)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reranker.model.pair_encoding import check_max_lengths


def opt(default, help: str):
    """A dataclass field with a default and the help text HfArgumentParser shows."""
    return field(default=default, metadata={"help": help})


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Model directory or Hub name to start from or to score with."})
    config_name: str | None = opt(None, "Config to use instead of the model's own.")
    tokenizer_name: str | None = opt(None, "Tokenizer to use instead of the model's.")
    cache_dir: str | None = opt(None, "Where Hub downloads are cached.")
    model_revision: str | None = opt(None, "Hub revision (branch, tag or commit).")


@dataclass
class EncodingArguments:
    q_max_len: int = opt(16, "Query tokens kept (before the pair's special tokens).")
    p_max_len: int = opt(128, "Passage tokens kept (title + text).")
    passage_field_separator: str = opt(" ", "Text between a passage's title and text.")

    def __post_init__(self) -> None:
        check_max_lengths(self.q_max_len, self.p_max_len)
