"""Reading and writing the files every stage exchanges: queries, corpora, qrels, runs, rerank inputs, training
rows, Hub datasets, summaries; and the one-line errors bad input gets."""
