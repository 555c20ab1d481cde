"""Command shim: `python -m reranker.serve` runs `reranker.cli.serve`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.serve import main

    raise SystemExit(main())
