"""A quiet console: no TensorFlow or Jupyter start-up notice from the runner, the CLI, kernels or workers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mecl_utils.quiet import native_stderr_captured

ROOT = Path(__file__).resolve().parents[1]
NOTICES = (
    "absl::InitializeLog",
    "oneDNN custom operations",
    "This TensorFlow binary is optimized",
    "without encryption",
    "Task was destroyed",
)


def run(command: list[str], tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name != "MECL_VERBOSE"}
    env.update(MECL_CACHE_DIR=str(tmp_path / "cache"), **extra_env)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def notices_in(text: str) -> list[str]:
    return [notice for notice in NOTICES if notice in text]


def test_a_smoke_chapter_run_by_the_runner_prints_no_start_up_notice(tmp_path):
    # The sorting chapter trains its networks in worker processes: kernel and workers both start TensorFlow.
    # Its difficulty scores (exit agreement trains two branches in the kernel) add nothing to that question.
    out = tmp_path / "sorting.ipynb"
    command = [sys.executable, "-m", "mecl_utils.book", "run", "notebooks/sorting.md", str(out)]
    done = run([*command, "-p", "profile", "smoke", "-p", "scores", ""], tmp_path)
    assert done.returncode == 0, done.stderr
    assert notices_in(done.stdout + done.stderr) == []
    assert out.is_file()


def test_the_command_line_prints_no_start_up_notice(tmp_path):
    done = run(
        [sys.executable, "-m", "mecl_utils", "exits", "--results", str(tmp_path / "none.csv")], tmp_path
    )
    assert done.returncode == 1
    assert notices_in(done.stderr) == []
    assert done.stderr.startswith("No repetitions in")


def test_verbose_shows_what_tensorflow_says_at_start_up(tmp_path):
    done = run([sys.executable, "-c", "import mecl_utils, tensorflow"], tmp_path, MECL_VERBOSE="1")
    assert "oneDNN custom operations" in done.stderr


def test_captured_native_stderr_is_replayed_when_the_block_fails(capfd):
    with pytest.raises(RuntimeError), native_stderr_captured():
        os.write(2, b"what the library said before failing\n")
        raise RuntimeError("import failed")
    assert "what the library said before failing" in capfd.readouterr().err


def test_captured_native_stderr_is_dropped_when_the_block_succeeds(capfd):
    with native_stderr_captured():
        os.write(2, b"start-up chatter\n")
    assert "start-up chatter" not in capfd.readouterr().err


@pytest.mark.slow
def test_the_test_suite_run_as_make_test_runs_it_prints_no_start_up_notice(tmp_path):
    # pytest-xdist workers import TensorFlow as they collect; what it said used to follow the summary.
    command = [sys.executable, "-m", "pytest", "tests/test_setup.py", "-n", "1", "-p", "no:cacheprovider"]
    done = run(command, tmp_path)
    assert done.returncode == 0, done.stdout
    assert notices_in(done.stdout + done.stderr) == []
