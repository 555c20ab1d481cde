"""Command shim: `python -m reranker.evaluate` (its name before the package was laid out by stage) runs
`reranker.cli.evaluate`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.evaluate import main

    raise SystemExit(main())
