"""Command shim: `python -m reranker.bm25` (its name before the package was laid out by stage) runs
`reranker.cli.bm25`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.bm25 import main

    raise SystemExit(main())
