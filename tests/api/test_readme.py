"""The README's "As a library" example runs as written."""

from __future__ import annotations

import ast
import os
import re

import pytest

from tests.conftest import ROOT


def library_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## As a library\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow  # it trains MiniLM for 20 steps (about a minute on 2 CPU cores)
def test_the_readme_example_runs(offline_data, tmp_path, monkeypatch, capsys):
    work = tmp_path / "checkout"
    work.mkdir()
    (tmp_path / "shared").symlink_to(offline_data.parents[1])  # the example reads ../shared, as from the repo
    monkeypatch.chdir(work)
    exec(compile(library_example(), "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    scores = [i for i, line in enumerate(printed) if re.fullmatch(r"\[-?\d+\.\d+\]", line.strip())]
    assert len(scores) == 1  # the predict line; the Trainer prints its own summary line before it
    ranking = ast.literal_eval(printed[scores[0] + 1])
    assert sorted(index for index, _ in ranking) == [0, 1] and ranking[0][1] >= ranking[1][1]
    assert "QueriesRanked: 40" in printed and any(line.startswith("MRR @10: 0.") for line in printed)
    assert len((work / "runs" / "val.scores.txt").read_text().splitlines()) == 1177
    assert os.path.isfile(work / "runs" / "api-minilm" / "summary.json")
