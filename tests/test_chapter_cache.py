"""Executed chapters are kept in the cache and reused only while nothing that determines them changed."""

from pathlib import Path

import nbformat
import pytest

import mecl_utils.book.__main__ as book_cli
from mecl_utils.book import build as book_build
from mecl_utils.book import chapter_cache

CHAPTER = "notebooks/sorting"
OFFERED = {"profile": "smoke", "profile_reason": "requested", "data_dir": ""}
INPUTS = {"package": "abc", "data": {}}


@pytest.fixture
def executions(tmp_path, monkeypatch):
    """Chapters 'executed' by a stand-in for papermill that writes a one-cell notebook; the calls listed."""
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def fake_execute(notebook, output, parameters, **_):
        calls.append(parameters)
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        cell = nbformat.v4.new_code_cell(
            "x = 1", outputs=[nbformat.v4.new_output("stream", text=f"{len(calls)}\n")]
        )
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), output)

    monkeypatch.setattr(book_build, "execute_notebook", fake_execute)
    return calls


def build(tmp_path, offered=OFFERED, inputs=INPUTS, **options):
    return book_build.execute_chapters(
        [CHAPTER], tmp_path / "src", offered, tmp_path / "out", inputs, **options
    )


def printed(tmp_path) -> str:
    notebook = nbformat.read(tmp_path / "src" / f"{CHAPTER}.ipynb", as_version=4)
    return notebook.cells[0].outputs[0].text


def test_an_unchanged_chapter_is_kept_and_not_executed_again(tmp_path, executions):
    build(tmp_path)
    [(_, _, _, status)] = build(tmp_path)
    assert len(executions) == 1
    assert status.startswith("kept from ")
    assert printed(tmp_path) == "1\n"


def test_rerun_executes_a_kept_chapter_again(tmp_path, executions):
    build(tmp_path)
    [(_, _, _, status)] = build(tmp_path, rerun=True)
    assert (len(executions), status, printed(tmp_path)) == (2, "executed", "2\n")


def test_other_parameters_execute_the_chapter_again(tmp_path, executions):
    build(tmp_path)
    build(tmp_path, offered={**OFFERED, "data_dir": "/elsewhere"})
    assert len(executions) == 2


def test_other_package_code_executes_the_chapter_again(tmp_path, executions):
    build(tmp_path)
    build(tmp_path, inputs={**INPUTS, "package": "abd"})
    assert len(executions) == 2


def test_an_unreadable_kept_chapter_is_executed_again(tmp_path, executions):
    build(tmp_path)
    [kept] = (tmp_path / "cache" / chapter_cache.KIND).glob("*.ipynb")
    kept.write_text("{not a notebook")
    [(_, _, _, status)] = build(tmp_path)
    assert (len(executions), status) == (2, "executed")


def test_the_key_changes_with_the_chapters_text(tmp_path):
    chapter = tmp_path / "chapter.md"
    chapter.write_text("# One\n")
    before = chapter_cache.chapter_key(chapter, OFFERED, INPUTS)
    chapter.write_text("# One, edited\n")
    assert chapter_cache.chapter_key(chapter, OFFERED, INPUTS) != before


def test_the_package_fingerprint_follows_its_source_files(tmp_path):
    (tmp_path / "module.py").write_text("x = 1\n")
    before = chapter_cache.package_fingerprint(tmp_path)
    (tmp_path / "module.py").write_text("x = 2\n")
    assert chapter_cache.package_fingerprint(tmp_path) != before


def test_a_data_file_replaced_in_place_changes_the_inputs(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    for name in names:
        (folder / name).write_bytes(b"x")
    before = chapter_cache.inputs_identity("book", str(tmp_path))
    (folder / "test_batch").write_bytes(b"xy")
    after = chapter_cache.inputs_identity("book", str(tmp_path))
    assert before["data"]["cifar10"] and after["data"] != before["data"]


def test_the_report_says_which_chapters_were_kept(tmp_path):
    page = tmp_path / "execution.md"
    page.write_text("# Execution report\n\nIntro.\n\nThis copy of the page was not written by a build.\n")
    record = [
        (CHAPTER, "smoke", 12.5, "kept from 2026-12-03 20:39 UTC"),
        ("notebooks/pacing", "", 3.0, "executed"),
    ]
    book_build._write_execution_report(page, "smoke", "requested", record)
    text = page.read_text()
    assert "| 12.5 | kept from 2026-12-03 20:39 UTC |" in text
    assert "1 of the 2 chapters were unchanged" in text and "RERUN=1" in text


def test_a_build_without_kept_chapters_says_nothing_about_keeping(tmp_path):
    page = tmp_path / "execution.md"
    page.write_text("# Execution report\n\nIntro.\n\nThis copy of the page was not written by a build.\n")
    book_build._write_execution_report(page, "smoke", "requested", [(CHAPTER, "smoke", 3.0, "executed")])
    assert "unchanged" not in page.read_text()


def test_the_command_line_passes_rerun_to_the_build(monkeypatch):
    seen = {}
    monkeypatch.setattr(book_cli, "build_book", lambda *args, **options: seen.update(options))
    assert book_cli.main(["build", "--profile", "smoke", "--rerun"]) == 0
    assert seen["rerun"] is True
