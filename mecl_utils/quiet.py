"""A quiet console: TensorFlow's native start-up notices kept out of the terminal, errors kept in full.

Importing TensorFlow 2.2x writes a handful of C++ log lines straight to file descriptor 2 ("All log messages
before absl::InitializeLog() is called…", "oneDNN custom operations are on…", "This TensorFlow binary is
optimized…"), once per process: the command line, every branch-training worker and every notebook kernel
repeat them. They come from absl logging before it is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` does not
reach them. :func:`install` (called by ``mecl_utils/__init__.py``) therefore wraps the one import of
``tensorflow`` in each process: while it runs, file descriptor 2 points at a scratch file, which is thrown
away when the import succeeds and written to the real stderr when it fails, so an import error still reads in
full. ``MECL_VERBOSE=1`` switches this off and shows everything.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["VERBOSE_VARIABLE", "install", "is_verbose", "native_stderr_captured", "uninstall"]

VERBOSE_VARIABLE = "MECL_VERBOSE"


def is_verbose() -> bool:
    """Whether ``$MECL_VERBOSE`` asks to see every start-up notice (``1``, ``true`` or ``yes``)."""
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() in {"1", "true", "yes"}


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """File descriptor 2 (C++ logging included) captured for the block; replayed to stderr if it raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            scratch.seek(0)
            os.write(2, scratch.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self._loader  # later lookups see the real loader
        with native_stderr_captured():
            self._loader.exec_module(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with the normal machinery, and hands back a spec whose import is quiet."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Make this process's first ``import tensorflow`` quiet, unless verbose or already imported."""
    if is_verbose() or "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def uninstall() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _QuietTensorFlowFinder)]
