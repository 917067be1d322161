"""The book builds through the runner with the smoke profile, and no page shows an error."""

from pathlib import Path

import nbformat
import pytest

from mecl_utils.book.build import toc_files
from mecl_utils.book.parameters import notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [entry for entry in toc_files(ROOT / "_toc.yml") if entry.startswith("notebooks/")]

pytestmark = pytest.mark.slow


def test_the_book_builds_with_the_smoke_profile(built_book):
    assert (built_book / "index.html").is_file()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_shows_no_traceback(built_book, chapter):
    assert "Traceback" not in (built_book / f"{chapter}.html").read_text()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_has_no_stderr_or_error_output(built_book, chapter):
    page = (built_book / f"{chapter}.html").read_text()
    assert 'class="output stderr"' not in page
    assert 'class="output traceback' not in page


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_has_a_figure(built_book, chapter):
    assert "<img" in (built_book / f"{chapter}.html").read_text()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_ran_with_the_smoke_profile_if_it_takes_one(built_book, chapter):
    if "profile" not in notebook_parameters(ROOT / f"{chapter}.md"):
        pytest.skip(f"{chapter} has no `profile` parameter")
    executed = nbformat.read(built_book.parent / "src" / f"{chapter}.ipynb", as_version=4)
    injected = [cell for cell in executed.cells if "injected-parameters" in cell.metadata.get("tags", [])]
    assert 'profile = "smoke"' in injected[0].source


def test_the_execution_report_lists_every_chapter_with_its_profile_and_time(built_book):
    page = (built_book / "book" / "execution.html").read_text()
    assert "smoke" in page and "This copy of the page" not in page
    for chapter in CHAPTERS:
        assert f'href="../{chapter}.html' in page, chapter
    assert page.count("<td><p>executed</p></td>") == len(CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_offers_its_executed_notebook_for_download(built_book, chapter):
    name = Path(chapter).name
    assert f'href="../_sources/{chapter}.ipynb"' in (built_book / f"{chapter}.html").read_text()
    downloaded = nbformat.read(built_book / "_sources" / f"{chapter}.ipynb", as_version=4)
    assert any(cell.get("outputs") for cell in downloaded.cells if cell.cell_type == "code"), name
