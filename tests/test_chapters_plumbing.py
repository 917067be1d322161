"""Chapter pages show the code that teaches and hide the plumbing: glue bookkeeping, helper definitions,
string parsing, results-store and engine set-up; chapters import the package through one surface module."""

import ast
import re
from pathlib import Path

import jupytext
import pytest

from mecl_utils.book.build import toc_files

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.md"))
TOC_CHAPTERS = [
    ROOT / f"{entry}.md" for entry in toc_files(ROOT / "_toc.yml") if entry.startswith("notebooks/")
]
HIDDEN = {"remove-cell", "remove-input", "hide-input"}  # tags that keep a cell's source off the page at first
REMOVED = {"remove-cell", "remove-input"}  # tags that keep a cell's source off the page for good
GLUE_CALL = re.compile(r"\bglue\(")
DEFINITION = re.compile(r"^\s*def \w+", re.MULTILINE)
SURFACE = "mecl_utils.book.chapter"
SURFACE_FILE = ROOT / "mecl_utils" / "book" / "chapter.py"
PARSING = {"split", "rsplit"}  # string parsing: the chapter should receive the value as data
BOOKKEEPING = {"ResultsStore", "Engine"}  # built by the surface's results_store and its training functions


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


def _package_imports(path: Path) -> list[ast.stmt]:
    """Every import statement of the chapter's code cells that reaches into ``mecl_utils``."""
    found = []
    for cell in _code_cells(path):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mecl_utils":
                found.append(node)
            elif isinstance(node, ast.Import) and any(
                a.name.split(".")[0] == "mecl_utils" for a in node.names
            ):
                found.append(node)
    return found


def test_the_toc_lists_the_chapters():
    assert TOC_CHAPTERS and all(path.exists() for path in TOC_CHAPTERS)


@pytest.mark.parametrize("path", TOC_CHAPTERS, ids=lambda path: path.stem)
def test_a_chapter_imports_the_package_through_the_surface_only(path):
    elsewhere = [
        ast.unparse(node)
        for node in _package_imports(path)
        if not (isinstance(node, ast.ImportFrom) and node.module == SURFACE)
    ]
    assert not elsewhere, f"{path.name} imports {elsewhere}; import these names from {SURFACE}"


@pytest.mark.parametrize("path", TOC_CHAPTERS, ids=lambda path: path.stem)
def test_every_name_a_chapter_imports_is_in_the_surface(path):
    module = ast.parse(SURFACE_FILE.read_text())
    exported = next(
        ast.literal_eval(node.value)
        for node in module.body
        if isinstance(node, ast.Assign)
        and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]
    )
    imported = {
        a.name for node in _package_imports(path) if isinstance(node, ast.ImportFrom) for a in node.names
    }
    assert imported <= set(exported), (
        f"{path.name} imports {sorted(imported - set(exported))}, not in __all__"
    )


def _plumbing_calls(source: str) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if (isinstance(func, ast.Attribute) and name in PARSING) or name in BOOKKEEPING:
            calls.append(ast.unparse(node))
    return calls


@pytest.mark.parametrize("path", TOC_CHAPTERS, ids=lambda path: path.stem)
def test_no_cell_on_the_page_parses_strings_or_builds_a_store_or_engine(path):
    # On the page: every cell but remove-cell/remove-input ones; a hide-input cell counts, one click shows it.
    shown = [
        call
        for cell in _code_cells(path)
        if not _tags(cell) & REMOVED
        for call in _plumbing_calls(cell.source)
    ]
    assert not shown, f"{path.name}: cells on the page call {shown}; let the chapter surface do it"


def test_the_teaching_exercises_import_the_package_through_the_surface_only():
    modules = re.findall(r"from (mecl_utils[\w.]*) import", (ROOT / "book" / "teaching.md").read_text())
    assert modules and set(modules) == {SURFACE}, f"book/teaching.md imports from {sorted(set(modules))}"
