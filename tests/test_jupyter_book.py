"""Jupyter Book's own command on a fresh copy: `jupyter-book build .` runs every chapter with its defaults.

No data folder is visible to the copy, so the chapters' ``profile="auto"`` falls back to the smoke profile,
as it does on a fresh clone; myst-nb executes them under ``_config.yml``'s execution timeout.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from mecl_utils.book.build import _jupyter_book_command, toc_files

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def fresh_copy(target: Path) -> Path:
    """What a clone would hold (tracked files and untracked ones git does not ignore), copied there."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def test_jupyter_book_build_runs_every_chapter_with_its_defaults(tmp_path, smoke_cache):
    clone = fresh_copy(tmp_path / "clone")
    (tmp_path / "no-data").mkdir()
    env = {**os.environ, "MECL_DATA_DIR": str(tmp_path / "no-data"), "MECL_CACHE_DIR": str(smoke_cache)}
    env.pop("MPLBACKEND", None)  # a reader's Jupyter shows figures inline
    built = subprocess.run(
        [_jupyter_book_command(), "build", str(clone), "--warningiserror", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    for entry in toc_files(clone / "_toc.yml"):
        assert (clone / "_build" / "html" / f"{entry}.html").is_file(), entry
    for entry in toc_files(clone / "_toc.yml"):
        if not entry.startswith("notebooks/"):
            continue
        executed = nbformat.read(clone / "_build" / "jupyter_execute" / f"{entry}.ipynb", as_version=4)
        code = [cell for cell in executed.cells if cell.cell_type == "code"]
        assert code and all(cell.execution_count for cell in code), f"{entry} was not executed"
    table_iv = (clone / "_build" / "html" / "notebooks" / "table_iv.html").read_text()
    assert "smoke profile on 8×8 digits" in re.sub(r"<[^>]+>", "", table_iv)  # the chapter's profile note
