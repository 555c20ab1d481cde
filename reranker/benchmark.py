"""Command shim: `python -m reranker.benchmark` runs `reranker.cli.benchmark`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.benchmark import main

    raise SystemExit(main())
