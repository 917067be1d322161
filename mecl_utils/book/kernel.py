"""One chapter executed by papermill in a quiet kernel: checked parameters in, an executed .ipynb out.

Each kernel listens on local IPC sockets of its own and writes its own stderr (TensorFlow's start-up notices)
to a log file, so the console shows the book's lines only; a failing cell raises an error naming the chapter.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError
from traitlets import Unicode, default
from traitlets.config import Config

from mecl_utils import quiet
from mecl_utils.book.parameters import read_notebook, validate_parameters

__all__ = ["NotebookExecutionError", "QuietKernelManager", "execute_notebook"]

# Seconds a chapter's kernel may take to start: papermill's 60 s ran out when two book builds and a
# training grid shared this 2-core machine.
KERNEL_START_TIMEOUT = 300


class NotebookExecutionError(PapermillExecutionError):
    """A cell of a notebook raised: papermill's error, with the notebook and its executed copy named."""

    def __init__(
        self, notebook: Path, executed_copy: Path, error: PapermillExecutionError, kernel_log: str = ""
    ):
        super().__init__(
            error.cell_index, error.exec_count, error.source, error.ename, error.evalue, error.traceback
        )
        self.notebook, self.executed_copy, self.kernel_log = notebook, executed_copy, kernel_log

    def __str__(self) -> str:
        log = Path(self.kernel_log) if self.kernel_log else None
        kernel_said = f"; the kernel's own stderr: {log}" if log and log.stat().st_size else ""
        return (
            f"notebook {self.notebook} failed with {self.ename}: {self.evalue} "
            f"(executed copy with the error: {self.executed_copy}{kernel_said}){super().__str__()}"
        )


class QuietKernelManager(AsyncKernelManager):
    """A chapter's kernel on local IPC sockets (no TCP port to warn about), its own stderr in a log file.

    Each kernel's sockets get a prefix of their own under the temporary folder. jupyter_client's default,
    ``kernel-ipc`` in the kernel's working folder, lets two kernels started at once in one chapter folder
    (two test workers, two terminals) take the same socket files; one client then reads the other kernel's
    messages and fails with "Invalid Signature".

    What a kernel writes to its file descriptor 2 never reaches the notebook: TensorFlow's C++ notices,
    ipykernel's shutdown messages. It goes to ``stderr_path`` (appended), so the console shows the runner's
    lines only; cell errors still reach the notebook and the runner's error message.
    """

    stderr_path = Unicode("", config=True, help="file for the kernel's own stderr; empty: inherit")

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return super()._ip_default()
        return os.path.join(tempfile.gettempdir(), f"mecl-kernel-{uuid.uuid4().hex[:12]}")

    async def start_kernel(self, **kw) -> None:
        if not self.stderr_path:
            return await super().start_kernel(**kw)
        with open(self.stderr_path, "ab") as log:
            return await super().start_kernel(stderr=log, **kw)


@contextlib.contextmanager
def _kernel_environment():
    # MPLBACKEND=Agg (set by `make test`) would stop the kernels from showing figures inline.
    saved = os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved


def execute_notebook(
    path: str | os.PathLike,
    output_path: str | os.PathLike,
    parameters: dict[str, object],
    *,
    cwd: str | os.PathLike | None = None,
    kernel: str = "python3",
    kernel_log: str | os.PathLike | None = None,
    progress: str | None = None,
) -> None:
    """Run the jupytext notebook ``path`` with checked ``parameters``, saving the executed .ipynb.

    The kernel runs in ``cwd`` (default: the notebook's folder); its own stderr goes to ``kernel_log``
    (default: beside the output, ``<output>.kernel.log``; the terminal when ``$MECL_VERBOSE`` is set).
    ``progress`` labels a progress bar over the cells, erased when the notebook is done. A failing cell
    raises ``NotebookExecutionError``, a ``PapermillExecutionError`` whose message names the notebook.
    """
    path, output_path = Path(path), Path(output_path)
    checked = validate_parameters(path, parameters)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if quiet.is_verbose():
        kernel_log = ""
    else:
        kernel_log = Path(kernel_log or output_path.with_suffix(".kernel.log"))
        kernel_log.parent.mkdir(parents=True, exist_ok=True)
        kernel_log.write_bytes(b"")
    config = Config({"QuietKernelManager": {"stderr_path": str(kernel_log)}})
    with tempfile.TemporaryDirectory() as scratch, _kernel_environment():
        as_ipynb = Path(scratch) / f"{path.stem}.ipynb"
        nbformat.write(read_notebook(path), as_ipynb)
        try:
            papermill.execute_notebook(
                str(as_ipynb),
                str(output_path),
                parameters=checked,
                cwd=str(cwd or path.parent),
                kernel_name=kernel,
                language="python",
                log_output=False,
                progress_bar={"desc": progress or path.stem, "leave": False, "disable": None},
                kernel_manager_class=QuietKernelManager,
                config=config,
                start_timeout=KERNEL_START_TIMEOUT,
            )
        except PapermillExecutionError as err:
            raise NotebookExecutionError(path, output_path, err, str(kernel_log)) from err
