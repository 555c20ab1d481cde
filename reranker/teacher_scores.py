"""Command shim: `python -m reranker.teacher_scores` runs `reranker.cli.teacher_scores`; import that module, not
this one."""

if __name__ == "__main__":
    from reranker.cli.teacher_scores import main

    raise SystemExit(main())
