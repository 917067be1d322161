"""A book build: each chapter of ``_toc.yml`` executed (or kept from the cache), then rendered (Jupyter Book).

Each notebook is executed into ``<out>/src/`` with the parameters it declares of those the build offers
(profile, its reason, the data folder), and rendered there with execution switched off, so the book shows
exactly the outputs of this run; ``book/execution.md`` is replaced by the report of this run. HTML lands in
``<out>/html`` (default ``_build/html``), with MathJax served from the book when a local copy exists.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import nbformat
import yaml

from mecl_utils import quiet
from mecl_utils.book import chapter_cache
from mecl_utils.book.kernel import execute_notebook
from mecl_utils.book.parameters import declared_parameters
from mecl_utils.book.profile_choice import resolve_profile

__all__ = ["build_book", "execute_chapters", "toc_files"]

ROOT = Path(__file__).resolve().parents[2]


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
        wanted = {key: value for key, value in offered.items() if key in declared_parameters(notebook)}
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
