"""Training losses, one a file: each module states its inputs and formula."""
