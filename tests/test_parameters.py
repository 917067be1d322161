"""Every chapter's parameters cell reads the same to papermill as to the book runner: names, types, help."""

import subprocess
import sys
from pathlib import Path

import jupytext
import papermill
import pytest

from mecl_utils.book.build import toc_files
from mecl_utils.book.parameters import notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [entry for entry in toc_files(ROOT / "_toc.yml") if entry.startswith("notebooks/")]


def _as_ipynb(chapter: str, folder: Path) -> Path:
    path = folder / f"{Path(chapter).name}.ipynb"
    jupytext.write(jupytext.read(ROOT / f"{chapter}.md"), path)
    return path


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_papermill_and_the_runner_agree_on_names_and_types(chapter, tmp_path):
    ours = notebook_parameters(ROOT / f"{chapter}.md")
    theirs = papermill.inspect_notebook(str(_as_ipynb(chapter, tmp_path)))
    assert list(theirs) == list(ours)
    for name, value in ours.items():
        assert theirs[name]["inferred_type_name"].split("[")[0] == type(value).__name__, name
        assert theirs[name]["help"], f"{chapter}: parameter {name} has no help comment"


def test_papermill_help_lists_every_parameter_with_a_type(tmp_path):
    chapter = "notebooks/early_exits"
    result = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(_as_ipynb(chapter, tmp_path))],
        capture_output=True,
        text=True,
        check=True,
    )
    for name in notebook_parameters(ROOT / f"{chapter}.md"):
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(f"{name}:"))
        assert "Unknown type" not in line, line
