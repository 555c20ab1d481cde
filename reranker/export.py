"""Command shim: `python -m reranker.export` runs `reranker.cli.export`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.export import main

    raise SystemExit(main())
