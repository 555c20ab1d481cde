"""The package is laid out by stage: each layer imports only from the layers below it, and nothing outside
`reranker/cli/` imports the command line."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reranker"
BELOW = {  # what each part of the package may import (besides itself)
    "io": set(),
    "distributed": set(),
    "model": {"io"},
    "evaluation": {"io"},
    "first_stage": {"io"},
    "inference": {"io", "model", "distributed"},
    "training": {"io", "model", "distributed", "evaluation", "inference"},
    "api": {"io", "model", "distributed", "inference", "training"},
    "benchmarking": {"io", "model", "distributed", "evaluation", "first_stage", "inference", "training", "api"},
    "__init__": {"api"},
}
SHIMS = {
    "benchmark",
    "bm25",
    "demo_data",
    "evaluate",
    "export",
    "merge_scores",
    "mine_negatives",
    "plot",
    "random_model",
    "teacher_scores",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every `reranker` module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "reranker":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if (PACKAGE.parent / node.module.replace(
                ".", "/") / a.name).with_suffix(".py").exists())  # fmt: skip
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "reranker")
    return found


def part(module: str) -> str:
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


MODULES = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_each_layer_imports_only_from_below():
    wrong = [
        f"{module} imports {target}"
        for module, targets in MODULES.items()
        if part(module) not in ("cli", *SHIMS)
        for target in targets
        if part(target) != part(module) and part(target) not in BELOW[part(module)]
    ]
    assert not wrong


def test_only_the_command_line_and_its_shims_import_it():
    users = {module for module, targets in MODULES.items() if any(part(t) == "cli" for t in targets)}
    assert users - {f"reranker.{name}" for name in SHIMS} == {m for m in users if part(m) == "cli"}
    for name in SHIMS:  # a shim is its docstring and a `__main__` guard: importing it runs nothing
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        assert [type(node) for node in tree.body] == [ast.Expr, ast.If], name
        assert ast.unparse(tree.body[1].test) == "__name__ == '__main__'", name
        assert not set(vars(importlib.import_module(f"reranker.{name}"))) - {
            "__name__",
            "__doc__",
            "__package__",
            "__loader__",
            "__spec__",
            "__file__",
            "__cached__",
            "__builtins__",
        }


def test_no_import_cycles():
    graph = {module: {t for t in targets if t in MODULES and t != module} for module, targets in MODULES.items()}
    done, active = set(), []

    def visit(module):
        if module in active:
            raise AssertionError("import cycle: " + " -> ".join([*active[active.index(module) :], module]))
        if module not in done:
            active.append(module)
            for target in graph[module]:
                visit(target)
            active.pop()
            done.add(module)

    for module in graph:
        visit(module)


@pytest.mark.slow
def test_the_api_imports_in_a_fresh_interpreter():
    code = "from reranker import Reranker, train; import reranker; print(sorted(reranker.__all__))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['Reranker', '__version__', 'train']"
