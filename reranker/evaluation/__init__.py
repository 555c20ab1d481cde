"""Evaluating runs: the official MS MARCO MRR@10 and ir_measures metrics; converting scores to runs."""
