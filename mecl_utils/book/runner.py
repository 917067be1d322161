"""The book runner: executes every chapter notebook with papermill, then renders the book with Jupyter Book.

    python -m mecl_utils.book build --profile auto     # what `make book` runs
    python -m mecl_utils.book params notebooks/pacing.md
    python -m mecl_utils.book run notebooks/pacing.md out.ipynb -p batch_size 128

Chapters are MyST Markdown notebooks (jupytext) with one code cell tagged ``parameters``: a flat block of
``name: type = <literal>  # help`` lines, which ``papermill --help-notebook`` lists with their types and help.
The runner checks overrides against those types and defaults (papermill itself only warns),
picks a profile (``auto``: ``book`` when CIFAR-10 and the MobileNet weights are on disk, else ``smoke``),
executes each notebook of ``_toc.yml`` into ``<out>/src/`` and renders it there with execution switched off,
so the book shows exactly the outputs of this run. HTML lands in ``<out>/html`` (default ``_build/html``).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError
from traitlets import Unicode, default
from traitlets.config import Config

from mecl_utils import quiet
from mecl_utils.book import chapter_cache
from mecl_utils.networks import data

__all__ = [
    "NotebookExecutionError",
    "build_book",
    "execute_notebook",
    "notebook_parameters",
    "resolve_profile",
    "toc_files",
    "validate_parameters",
]

ROOT = Path(__file__).resolve().parents[2]
PROFILE_CHOICES = ("auto", "smoke", "book", "paper")
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


def _read_notebook(path: str | os.PathLike) -> nbformat.NotebookNode:
    """A notebook from .ipynb, or from MyST Markdown (the .md chapters) even when its header is incomplete."""
    return jupytext.read(path, fmt="md:myst") if Path(path).suffix == ".md" else jupytext.read(path)


def _parameters_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])
    ]


def notebook_parameters(path: str | os.PathLike) -> dict[str, object]:
    """Name → default value of the single code cell tagged ``parameters``, read without running any code."""
    cells = _parameters_cells(_read_notebook(path))
    if len(cells) != 1:
        raise ValueError(
            f"{path} has {len(cells)} code cells tagged `parameters`; it needs exactly one (a cell starting "
            "with `:tags: [parameters]` in MyST Markdown)."
        )
    source = cells[0].source
    parameters = {}
    for statement in ast.parse(source).body:
        line = ast.get_source_segment(source, statement)
        where = f"{path}, parameters cell, line {statement.lineno}: {line!r}"
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            raise ValueError(
                f"{where} is not `name: type = <literal>`; keep the cell to annotated assignments (papermill "
                "reads the type from the annotation) and compute derived values in a later cell."
            )
        whole_line = source.splitlines()[statement.lineno - 1]  # with its comment, as papermill reads it
        if statement.value is None or whole_line.count("=") != 1:
            raise ValueError(
                f"{where} needs a default value, and no other '=' on its line, comment included "
                "(papermill skips such a line)."
            )
        try:
            value = ast.literal_eval(statement.value)
        except ValueError as err:
            raise ValueError(
                f"{where} assigns an expression, not a literal (number, string, bool, None, tuple, list or "
                "dict); write the value out."
            ) from err
        annotation = _annotated_type(statement.annotation)
        if annotation is None or not _accepts_type(annotation, value):
            raise ValueError(
                f"{where}: annotate it with the type of its value ({', '.join(PARAMETER_TYPES)}), "
                f"e.g. `{statement.target.id}: {type(value).__name__} = ...`."
            )
        parameters[statement.target.id] = value
    return parameters


PARAMETER_TYPES = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list": list,
    "tuple": tuple,
    "dict": dict,
}


def _annotated_type(annotation: ast.expr) -> type | None:
    """``str`` for ``str``, ``list`` for ``list`` or ``list[float]``; None for anything else."""
    base = annotation.value if isinstance(annotation, ast.Subscript) else annotation
    return PARAMETER_TYPES.get(base.id) if isinstance(base, ast.Name) else None


def _accepts_type(annotation: type, value: object) -> bool:
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _accepts(default: object, value: object) -> bool:
    if default is None or default == "":
        return value is None or isinstance(value, str)
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def validate_parameters(path: str | os.PathLike, overrides: dict[str, object]) -> dict[str, object]:
    """The overrides, checked against the notebook's defaults (ints given for floats become floats)."""
    defaults = notebook_parameters(path)
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(
            f"{path} has no parameter(s) {unknown}; valid parameters: {', '.join(defaults) or '(none)'}."
        )
    checked = {}
    for name, value in overrides.items():
        default = defaults[name]
        if not _accepts(default, value):
            expected = "str or None" if default is None else type(default).__name__
            raise TypeError(
                f"{path}: parameter {name!r} expects {expected} (its default is {default!r}), "
                f"got {type(value).__name__} {value!r}."
            )
        is_int_for_float = isinstance(default, float) and isinstance(value, int)
        checked[name] = float(value) if is_int_for_float else value
    return checked


def _looked_in(data_dir: str | None) -> str:
    if data_dir or os.environ.get("MECL_DATA_DIR"):
        return f"looked in {data_dir or os.environ['MECL_DATA_DIR']}"
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    return f"looked in the Keras cache {keras_home / 'datasets'}; MECL_DATA_DIR is not set"


def resolve_profile(requested: str, data_dir: str | None = None) -> tuple[str, str]:
    """(profile, reason): "auto" is "book" when CIFAR-10 and the MobileNet weights are local, else "smoke".

    With ``MECL_ALLOW_DOWNLOAD=1`` whatever is missing is left for Keras to download. An explicit "book" or
    "paper" never falls back: a missing data set raises ``data.DataNotFoundError`` saying how to fix it.
    """
    if requested not in PROFILE_CHOICES:
        raise ValueError(f"unknown profile {requested!r}; choose one of {', '.join(PROFILE_CHOICES)}.")
    if requested == "smoke":
        return "smoke", "the smoke profile was requested"
    from mecl_utils.networks.backbones import (
        mobilenet_weights_path,  # imports Keras: only when a profile needs real data
    )
    from mecl_utils.protocol.profiles import get_profile

    allow_download = os.environ.get("MECL_ALLOW_DOWNLOAD") == "1"
    profile = "book" if requested == "auto" else requested
    names = [name for name in get_profile(profile).datasets if name != "digits"]
    found = {name.upper().replace("CIFAR", "CIFAR-"): data.find_local(name, data_dir) for name in names}
    missing = [name for name, folder in found.items() if folder is None]
    weights = mobilenet_weights_path(alpha=0.25)
    if requested == "auto" and not allow_download and (missing or weights == "imagenet"):
        problem = (
            f"CIFAR-10 not found locally ({_looked_in(data_dir)})"
            if missing
            else "no MobileNet α=0.25 weights file in $MECL_WEIGHTS_DIR, ~/.keras/models or ../shared/data"
        )
        return "smoke", (
            f"{problem}; set MECL_DATA_DIR or run `make book DATA_DIR=…` to use the book profile "
            "(or set MECL_ALLOW_DOWNLOAD=1 to let Keras download what is missing)"
        )
    if missing and not allow_download:
        raise data.DataNotFoundError(
            f"The {profile} profile needs {' and '.join(missing)}, not found locally "
            f"({_looked_in(data_dir)}). To fix, run `make book DATA_DIR=DIR` (or set MECL_DATA_DIR=DIR) with "
            f"DIR holding cifar-10-batches-py/ (CIFAR-10 offline: `{data.OFFLINE_BUILD_HINT}`), or set "
            "MECL_ALLOW_DOWNLOAD=1 to let Keras download it."
        )
    sources = [
        f"{name} {f'found in {folder}' if folder else 'to download'}" for name, folder in found.items()
    ]
    if profile == "book":
        sources.append(f"MobileNet weights {'to download' if weights == 'imagenet' else f'in {weights}'}")
    how = "chosen automatically" if requested == "auto" else "requested"
    return profile, f"the {profile} profile was {how}: {' and '.join(sources)}"


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
        nbformat.write(_read_notebook(path), as_ipynb)
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


def toc_files(toc_path: str | os.PathLike = ROOT / "_toc.yml") -> list[str]:
    """Every ``file`` of a Jupyter Book table of contents (root first), without suffix, in reading order."""

    def walk(node) -> list[str]:
        if isinstance(node, list):
            return [file for item in node for file in walk(item)]
        if not isinstance(node, dict):
            return []
        here = [str(node[key]) for key in ("root", "file") if key in node]
        return here + [file for key in ("parts", "chapters", "sections") for file in walk(node.get(key))]

    return [str(Path(file).with_suffix("")) for file in walk(yaml.safe_load(Path(toc_path).read_text()))]


def _notebook_source(entry: str, root: Path) -> Path:
    for suffix in (".md", ".ipynb"):
        if (root / f"{entry}{suffix}").is_file():
            return root / f"{entry}{suffix}"
    raise FileNotFoundError(f"_toc.yml lists {entry}, but there is no {entry}.md or {entry}.ipynb in {root}.")


def _declared(path: Path) -> set[str]:
    return set(notebook_parameters(path)) if _parameters_cells(_read_notebook(path)) else set()


def _jupyter_book_command() -> str:
    beside_python = Path(sys.executable).with_name("jupyter-book")
    found = str(beside_python) if beside_python.exists() else shutil.which("jupyter-book")
    if found is None:
        raise FileNotFoundError("jupyter-book is not installed; run `make env` (it installs the book extra).")
    return found


def build_book(
    profile: str = "auto",
    *,
    data_dir: str | None = None,
    out_dir: str | os.PathLike = "_build",
    notebooks: list[str] | None = None,
    rerun: bool = False,
) -> Path:
    """Execute the notebooks of ``_toc.yml`` (or only ``notebooks``, e.g. ["notebooks/pacing"]) and render.

    A chapter executed before with the same key (``chapter_cache``) is taken from the cache unless
    ``rerun``. Returns the folder holding index.html. Raises on the first failing notebook or Sphinx warning.
    """
    start = time.perf_counter()
    name, reason = resolve_profile(profile, data_dir)
    print(f"profile: {name} ({reason})", flush=True)
    out_dir = Path(out_dir).resolve()
    source = _fresh_book_source(out_dir / "src")
    # The kernels run in notebooks/, so a relative data directory is made absolute.
    data_dir = str(Path(data_dir).resolve()) if data_dir else ""
    offered = {"profile": name, "profile_reason": reason, "data_dir": data_dir}
    entries = [entry for entry in toc_files(ROOT / "_toc.yml") if entry.startswith("notebooks/")]
    inputs = chapter_cache.inputs_identity(name, data_dir)
    record = execute_chapters(
        notebooks if notebooks is not None else entries, source, offered, out_dir, inputs, rerun=rerun
    )
    _write_execution_report(source / "book" / "execution.md", name, reason, record)
    stage = time.perf_counter()
    jupyter_book = _jupyter_book_command()
    rendering = out_dir / "render"  # Jupyter Book writes <path-output>/_build/html
    command = [jupyter_book, "build", str(source), "--path-output", str(rendering), "--warningiserror"]
    if quiet.is_verbose():
        subprocess.run(command, check=True)
    else:  # Sphinx's status lines and Jupyter Book's banner (naming the folder before the move) kept back
        rendered = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if rendered.returncode:
            print(rendered.stdout, file=sys.stderr)
            raise subprocess.CalledProcessError(rendered.returncode, command)
    html = out_dir / "html"
    shutil.rmtree(html, ignore_errors=True)
    shutil.move(rendering / "_build" / "html", html)
    now = time.perf_counter()
    print(f"rendered the book in {now - stage:.1f} s; total {now - start:.1f} s")
    print(f"HTML: {html / 'index.html'}")
    return html


def execute_chapters(
    entries: list[str],
    source: Path,
    offered: dict[str, object],
    out_dir: Path,
    inputs: dict,
    *,
    rerun: bool = False,
) -> list[tuple[str, str, float, str]]:
    """Each chapter executed into ``source`` (or its kept execution copied there); (entry, profile, seconds,
    status) per chapter, status "executed" or "kept from <date>" (the seconds are then that execution's)."""
    record = []
    for entry in entries:
        notebook = _notebook_source(entry, ROOT)
        wanted = {key: value for key, value in offered.items() if key in _declared(notebook)}
        key = chapter_cache.chapter_key(notebook, wanted, inputs)
        target = source / f"{entry}.ipynb"
        found = None if rerun else chapter_cache.kept(key)
        if found is not None:
            executed, sidecar = found
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(executed, target)
            seconds, status = sidecar["seconds"], f"kept from {sidecar['executed']}"
            print(f"{notebook.relative_to(ROOT)}: unchanged, {status} (--rerun executes it)", flush=True)
        else:
            stage = time.perf_counter()
            execute_notebook(
                notebook,
                target,
                wanted,
                kernel_log=out_dir / "logs" / f"{Path(entry).name}.kernel.log",
                progress=str(notebook.relative_to(ROOT)),
            )
            seconds, status = time.perf_counter() - stage, "executed"
            chapter_cache.keep(key, target, seconds)
            print(f"executed {notebook.relative_to(ROOT)} in {seconds:.1f} s", flush=True)
        record.append((entry, wanted.get("profile", ""), seconds, status))  # "": the chapter takes no profile
    return record


def _write_execution_report(
    path: Path, profile: str, reason: str, record: list[tuple[str, str, float, str]]
) -> None:
    """Replace the build's ``book/execution.md`` by the report of this run: chapters, profile, seconds."""
    introduction = path.read_text().split("\n\nThis copy of the page")[0]
    rows = "\n".join(
        f"| {{doc}}`../{entry}` | {f'`{used}`' if used else '–'} | {seconds:.1f} | {status} |"
        for entry, used, seconds, status in record
    )
    versions = ", ".join(
        f"{package} {metadata.version(package)}" for package in ("keras", "papermill", "jupyter-book")
    )
    total = sum(seconds for _, _, seconds, status in record if status == "executed")
    kept = sum(status != "executed" for *_, status in record)
    path.write_text(
        f"""{introduction}

This build ran on {time.strftime("%Y-%m-%d %H:%M %Z")} with the **{profile}** profile ({reason}), on
{os.cpu_count()} CPU cores, Python {platform.python_version()}, {versions}.

| chapter | profile | seconds | status |
|---|---|---|---|
{rows}

The chapters this build executed took {total:.0f} s together. A chapter that fails stops the build, so
every chapter listed here ran to its end. Times include starting each notebook's kernel (a few seconds,
mostly importing TensorFlow).
{_kept_note(kept, len(record))}"""
    )


def _kept_note(kept: int, chapters: int) -> str:
    if not kept:
        return ""
    return f"""
{kept} of the {chapters} chapters were unchanged since an earlier build (the same text, parameters, package
code, library versions and data files), so this build kept that build's execution, dated in the table, with
the seconds it took then. `make book RERUN=1` executes every chapter again.
"""


def _fresh_book_source(source: Path) -> Path:
    """``source`` emptied, then given the pages and the configuration, with notebook execution off."""
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    shutil.copytree(ROOT / "book", source / "book")
    shutil.copy2(ROOT / "_toc.yml", source / "_toc.yml")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"  # papermill has executed them
    _bundle_mathjax(source, config)
    (source / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return source


# Where `make book` puts npm's MathJax 3 (`npm install --prefix .cache/mathjax mathjax@3`), if npm is there.
MATHJAX_DIR = ROOT / ".cache" / "mathjax" / "node_modules" / "mathjax" / "es5"


def _bundle_mathjax(source: Path, config: dict, mathjax_dir: Path | None = None) -> bool:
    """Serve MathJax from the book itself when a local copy exists, so equations render offline.

    Sphinx otherwise loads MathJax from a CDN. Returns whether a local copy was bundled.
    """
    mathjax_dir = Path(os.environ.get("MECL_MATHJAX_DIR", mathjax_dir or MATHJAX_DIR))
    if not (mathjax_dir / "tex-mml-chtml.js").is_file():
        return False
    # Not under _static: Jupyter Book would add every .js file there to every page.
    shutil.copytree(mathjax_dir, source / "_mathjax" / "mathjax")
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config["html_extra_path"] = ["_mathjax"]  # copied to the HTML root as mathjax/
    sphinx_config["mathjax_path"] = "../mathjax/tex-mml-chtml.js"  # relative to _static
    return True


def _literal(text: str) -> object:
    """A command-line value as a Python literal when it is one (3, 0.1, True), else as a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mecl_utils.book", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="execute the notebooks and render the book")
    build.add_argument("--profile", choices=PROFILE_CHOICES, default="auto")
    build.add_argument("--data-dir", help="folder holding cifar-10-batches-py/ (default: $MECL_DATA_DIR)")
    build.add_argument("--out", default="_build", help="output folder (default: _build)")
    build.add_argument(
        "--rerun", action="store_true", help="execute every chapter, even those kept from an earlier build"
    )
    build.add_argument(
        "--verbose",
        action="store_true",
        help="show each kernel's own stderr (TensorFlow start-up notices) instead of <out>/logs/",
    )
    params = commands.add_parser("params", help="print a notebook's parameters and their defaults")
    params.add_argument("notebook", type=Path)
    run = commands.add_parser("run", help="execute one notebook with checked parameters (-p NAME VALUE)")
    run.add_argument("notebook", type=Path)
    run.add_argument("output", type=Path, help="the executed notebook (.ipynb)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = parser.parse_args(argv)
    try:
        if args.command == "params":
            for key, value in notebook_parameters(args.notebook).items():
                print(f"{key} = {value!r}")
        elif args.command == "run":
            execute_notebook(args.notebook, args.output, {k: _literal(v) for k, v in args.parameter})
            print(f"executed {args.notebook} into {args.output}")
        else:
            if args.verbose:
                os.environ[quiet.VERBOSE_VARIABLE] = "1"  # kernels inherit it
            build_book(args.profile, data_dir=args.data_dir, out_dir=args.out, rerun=args.rerun)
    except (PapermillExecutionError, data.DataNotFoundError, ValueError, TypeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as err:
        print(
            f"error: rendering failed (exit {err.returncode}); see Jupyter Book's output above.",
            file=sys.stderr,
        )
        return 1
    return 0
