"""Executed chapters kept in the cache, so a book rebuilt with nothing changed re-executes nothing.

This is Jupyter Book's own ``execute_notebooks: cache`` idea, applied to the runner's papermill executions.
A chapter's outputs are determined by what its kernel runs and reads: the chapter's text, its parameters,
the package's code (``mecl_utils``), the versions of the libraries it computes and plots with, and the data
and weights files. Everything it trains or reads from ``$MECL_CACHE_DIR`` (networks, features, the results
file) is itself a function of those, the cache's own keys say so. ``chapter_key`` hashes exactly these; a
build finds an executed notebook under that key and uses it instead of starting a kernel. Measured
figures a chapter shows (seconds, latency) are those of the run that executed it, as the execution report
says, with the date. ``python -m mecl_utils.book build --rerun`` (``make book RERUN=1``) executes every
chapter again and replaces the kept copies.

Entries live at ``<cache>/chapters/<key>.ipynb`` beside a ``<key>.json`` sidecar (when and how long the
execution took), both written atomically; an unreadable entry is executed again.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from importlib import metadata
from pathlib import Path

import nbformat

__all__ = ["KIND", "chapter_key", "inputs_identity", "keep", "kept"]

KIND = "chapters"
PACKAGE = Path(__file__).resolve().parents[1]
# What computes, tabulates and draws a chapter's outputs; their versions enter every chapter's key.
LIBRARIES = (
    "tensorflow",
    "keras",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "matplotlib",
    "ray",
    "papermill",
    "ipykernel",
    "myst-nb",
    "nbformat",
)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def package_fingerprint(folder: Path = PACKAGE) -> str:
    """sha256 over every source and data file of the package (path and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".csv") and p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _files(folder: Path | None) -> list[list]:
    """(name, size, mtime) of every file under ``folder``: a data set replaced in place changes these."""
    if folder is None or not folder.exists():
        return []
    found = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in found]


def inputs_identity(profile_name: str, data_dir: str | None) -> dict:
    """The build's files and versions that every chapter's key includes (computed once per build)."""
    from mecl_utils.networks import data
    from mecl_utils.protocol.profiles import get_profile

    datasets = get_profile(profile_name).datasets
    weights = ""
    if profile_name != "smoke":
        from mecl_utils.networks.backbones import (
            mobilenet_weights_path,  # imports Keras: only when a profile reads the weights
        )

        weights = mobilenet_weights_path(alpha=0.25)
    return {
        "python": platform.python_version(),
        "libraries": {package: _version(package) for package in LIBRARIES},
        "package": package_fingerprint(),
        "data": {name: _files(data.find_local(name, data_dir or None)) for name in datasets},
        "weights": _files(Path(weights)) if weights and weights != "imagenet" else weights,
    }


def chapter_key(notebook: Path, parameters: dict, inputs: dict) -> str:
    """The hash of a chapter's text, its parameters and the build's ``inputs``: equal exactly when the
    execution would be."""
    payload = json.dumps(
        {"version": 1, "chapter": Path(notebook).read_text(), "parameters": parameters, "inputs": inputs},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _path(key: str, suffix: str) -> Path:
    from mecl_utils.cache import cache_path  # imports Keras; the runner needs it only once it has a key

    return cache_path(KIND, key, suffix)


def kept(key: str) -> tuple[nbformat.NotebookNode, dict] | None:
    """The executed notebook kept under ``key`` and its sidecar, or None (none kept, or unreadable)."""
    try:
        notebook = nbformat.read(_path(key, ".ipynb"), as_version=4)
        record = json.loads(_path(key, ".json").read_text())
        float(record["seconds"]), str(record["executed"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return notebook, record


def keep(key: str, executed: Path, seconds: float) -> None:
    """Keep the executed notebook ``executed`` under ``key`` with when and how long it ran."""
    from mecl_utils.cache import atomic_write

    record = {"executed": time.strftime("%Y-%m-%d %H:%M %Z"), "seconds": round(seconds, 1)}
    content = Path(executed).read_bytes()
    atomic_write(_path(key, ".ipynb"), lambda tmp: tmp.write_bytes(content), suffix=".ipynb")
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    atomic_write(_path(key, ".json"), lambda tmp: tmp.write_text(text), suffix=".json")
