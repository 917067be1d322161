"""An earlier commit of this repository checked out beside it, for benchmarks that compare two versions.

    with checked_out("HEAD~1", scratch / "before") as before:
        ...  # run the old package with PYTHONPATH=before

The git worktree is removed when the block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def checked_out(commit: str, folder: Path) -> Iterator[Path]:
    """``commit`` as a detached git worktree at ``folder``, for the duration of the block."""
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), commit], cwd=ROOT, check=True, capture_output=True
    )
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=False)
