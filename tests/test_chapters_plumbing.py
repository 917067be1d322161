"""Chapter pages show the code that teaches and hide the plumbing: glue bookkeeping and helper definitions."""

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.md"))
HIDDEN = {"remove-cell", "remove-input", "hide-input"}  # tags that keep a cell's source off the page at first
GLUE_CALL = re.compile(r"\bglue\(")
DEFINITION = re.compile(r"^\s*def \w+", re.MULTILINE)


def _code_cells(path: Path) -> list:
    return [cell for cell in jupytext.read(path, fmt="md:myst").cells if cell.cell_type == "code"]


def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def test_there_are_chapters():
    assert len(CHAPTERS) >= 7


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_every_glue_call_sits_in_a_removed_cell(path):
    shown = [
        cell.source
        for cell in _code_cells(path)
        if GLUE_CALL.search(cell.source) and "remove-cell" not in _tags(cell)
    ]
    assert not shown, f"{path.name}: glue(...) in cells readers see:\n" + "\n---\n".join(shown)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_no_shown_cell_defines_a_function(path):
    shown = [cell.source for cell in _code_cells(path) if not _tags(cell) & HIDDEN]
    defined = [match.group().strip() for source in shown for match in DEFINITION.finditer(source)]
    assert not defined, f"{path.name}: shown cells define {defined}; move them to mecl_utils.report"
