"""Train and run BERT cross-encoder rerankers on MS MARCO passage ranking."""

__version__ = "0.1.0"
