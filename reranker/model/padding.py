"""A decoder reranker's padding token: one that is not its EOS, so that checkpoints load anywhere.

Our heads find a pair's last token from the attention mask, so the padding id never matters here. transformers'
own `...ForSequenceClassification` forward (and so sentence-transformers' CrossEncoder, TEI, vLLM) finds it as the
last token that is not the padding id: with EOS as padding and a pair that ends with EOS (RankLLaMA's), it reads
the token before and scores something else. Tevatron pads with UNK for this reason; tokenizers without one have
a reserved or padding token of their own (Qwen's `<|fim_pad|>`, Llama 3's `<|finetune_right_pad_id|>`).
"""

from __future__ import annotations

import logging

from transformers import PreTrainedTokenizerBase

from reranker.io.errors import ParameterError, literal

logger = logging.getLogger(__name__)


def decoder_pad_token(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The padding token a decoder reranker should use: the tokenizer's own unless it is EOS (or missing), else
    UNK, else a special token named for padding or reserved; None when there is none of these.

    Example:
        >>> decoder_pad_token(llama2_tokenizer)  # no padding token, UNK "<unk>"
        '<unk>'
    """
    eos = tokenizer.eos_token
    if tokenizer.pad_token is not None and tokenizer.pad_token != eos:
        return tokenizer.pad_token
    if tokenizer.unk_token is not None and tokenizer.unk_token != eos:
        return tokenizer.unk_token
    taken = {eos, tokenizer.bos_token}
    spare = [token.content for token in tokenizer.added_tokens_decoder.values()
             if token.special and token.content not in taken]  # fmt: skip
    for word in ("pad", "reserved"):
        for content in spare:
            if word in content.lower():
                return content
    return None


def set_decoder_padding(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """Give `tokenizer` the `decoder_pad_token`; with none, its EOS and a warning (plain transformers then reads
    the token before a final EOS in padded batches); with no EOS either, a ParameterError."""
    token = decoder_pad_token(tokenizer)
    if token is None:
        if tokenizer.eos_token is None:
            raise ParameterError(f"{{0}} {literal(name)} has neither a padding nor an EOS token", "tokenizer")
        logger.warning(
            "%s has no padding token but its EOS (%s): checkpoints written with it score padded batches wrongly "
            "in plain transformers (it reads the token before a final EOS)", name, tokenizer.eos_token,
        )  # fmt: skip
        token = tokenizer.eos_token
    tokenizer.pad_token = token
