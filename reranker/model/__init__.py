"""The cross-encoder: loading a model and tokenizer, turning (query, passage) pairs into inputs, precision."""
