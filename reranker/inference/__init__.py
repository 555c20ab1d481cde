"""The inference stage: scoring pairs in length-sorted batches, streaming a rerank file to a score file with
resume, sharding and merging."""
