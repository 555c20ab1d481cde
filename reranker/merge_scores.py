"""Command shim: `python -m reranker.merge_scores` (its name before the package was laid out by stage) runs
`reranker.cli.merge_scores`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.merge_scores import main

    raise SystemExit(main())
