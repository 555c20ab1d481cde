"""Randomly initialised rerankers saved with their tokenizers (the command: `python -m reranker.random_model`): a
BERT cross-encoder of a tokenizer's vocabulary, or a decoder (Qwen3, Llama) with a tokenizer trained on a corpus.

For timing a model size without its weights (the default is the bert-base shape) and for fast tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from reranker.io.errors import UsageError
from reranker.model.loading import load_tokenizer


def save_random_bert(
    output_dir: str | Path,
    tokenizer_name_or_path: str,
    layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    intermediate: int | None = None,
    dropout: float = 0.1,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Path:
    """Save a random one-label BERT (feed-forward `intermediate`, default 4 x hidden) and the tokenizer.

    `initializer_range`: the weights' standard deviation; BERT's 0.02 scores every pair almost alike (spread
    ~1e-3), 0.1 spreads them (~0.1) for tests that compare scores."""
    if layers < 1 or hidden < 1 or heads < 1 or hidden % heads:
        raise UsageError(
            f"need layers, hidden, heads >= 1 and hidden divisible by heads, got {layers} {hidden} {heads}"
        )
    tokenizer = load_tokenizer(tokenizer_name_or_path)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate or 4 * hidden,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=1,
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return Path(output_dir)


# A decoder family's special tokens and what its tokenizer does with them: (bos, eos, pad, unk, the chat markers),
# as Qwen3's instruct tokenizer (no BOS, EOS <|im_end|>, pad <|endoftext|>) and Llama 2's (BOS <s> added to every
# text, EOS </s>, UNK <unk>, no pad token: the loaders must set one) have them.
DECODER_FAMILIES = {
    "qwen3": {"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>", "unk": None, "extra": ["<|im_start|>"]},
    "llama": {"bos": "<s>", "eos": "</s>", "pad": None, "unk": "<unk>", "extra": []},
}


def build_corpus_tokenizer(texts: Iterable[str], family: str, vocab_size: int = 2000):
    """A byte-level BPE tokenizer trained on `texts` with `family`'s special tokens, "yes", "no", "Yes" and "No"
    single tokens (the yes_no head and its presets read them): decoder tests need a real tokenizer and no decoder's
    can be downloaded here.

    Returns:
        A `PreTrainedTokenizerFast`.

    Example:
        >>> tokenizer = build_corpus_tokenizer((p.text for _, p in iter_corpus("corpus.jsonl.gz")), "qwen3")
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = DECODER_FAMILIES[family]
    specials = [token for token in (spec["bos"], spec["eos"], spec["pad"], spec["unk"], *spec["extra"]) if token]
    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    model.train_from_iterator(itertools.chain(["yes", "no", "Yes", "No"] * 200, texts), trainer)
    if spec["bos"]:
        bos_id = model.token_to_id(spec["bos"])
        model.post_processor = processors.TemplateProcessing(
            single=f"{spec['bos']} $A",
            pair=f"{spec['bos']} $A {spec['bos']} $B",
            special_tokens=[(spec["bos"], bos_id)],
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=model, bos_token=spec["bos"], eos_token=spec["eos"], pad_token=spec["pad"],
        unk_token=spec["unk"], additional_special_tokens=spec["extra"],
    )  # fmt: skip


def save_random_decoder(
    output_dir: str | Path,
    tokenizer,
    family: str = "qwen3",
    head: str = "causal_lm",
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    head_dim: int | None = None,
    seed: int = 0,
) -> Path:
    """Save a random decoder (`family` qwen3 or llama; `head` "causal_lm" or "sequence_classification" with one
    label) of the tokenizer's vocabulary, with the tokenizer. The defaults are a tiny model for tests; Qwen3-0.6B
    is layers 28, hidden 1024, heads 16, kv_heads 8, head_dim 128 (intermediate 3072: 3 x hidden, as here).

    Example:
        >>> save_random_decoder("tiny-qwen3", build_corpus_tokenizer(texts, "qwen3"))
    """
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        LlamaConfig,
        Qwen3Config,
    )

    config_class = {"qwen3": Qwen3Config, "llama": LlamaConfig}[family]
    config = config_class(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim or hidden // heads,
        max_position_embeddings=1024, tie_word_embeddings=family == "qwen3", num_labels=1,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    auto = AutoModelForCausalLM if head == "causal_lm" else AutoModelForSequenceClassification
    torch.manual_seed(seed)
    auto.from_config(config).save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return Path(output_dir)
