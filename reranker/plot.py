"""Command shim: `python -m reranker.plot` (its name before the package was laid out by stage) runs
`reranker.cli.plot`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.plot import main

    raise SystemExit(main())
