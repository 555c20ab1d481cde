"""Command shim: `python -m reranker.mine_negatives` (its name before the package was laid out by stage) runs
`reranker.cli.mine_negatives`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.mine_negatives import main

    raise SystemExit(main())
