"""The book builds: every chapter executes and Sphinx reports no warning."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _environment_without_mplbackend():
    # MPLBACKEND=Agg (set for the test run) would stop the notebooks' kernels from emitting figures.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@pytest.mark.slow
def test_jupyter_book_builds_without_warnings(tmp_path):
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    if not jupyter_book.exists():
        jupyter_book = shutil.which("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "--path-output", str(tmp_path), "--warningiserror"],
        capture_output=True,
        text=True,
        env=_environment_without_mplbackend(),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    pacing_page = (html / "notebooks" / "pacing.html").read_text()
    assert "Traceback" not in pacing_page
    assert pacing_page.count("<img") == 4  # Table III, Eq. 2-5, baby step/one-pass, sampler
