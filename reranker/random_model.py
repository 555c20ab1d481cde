"""Command shim: `python -m reranker.random_model` (its name before the package was laid out by stage) runs
`reranker.cli.random_model`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.random_model import main

    raise SystemExit(main())
