"""Command shim: `python -m reranker.demo_data` (its name before the package was laid out by stage) runs
`reranker.cli.demo_data`; import that module, not this one."""

if __name__ == "__main__":
    from reranker.cli.demo_data import main

    raise SystemExit(main())
