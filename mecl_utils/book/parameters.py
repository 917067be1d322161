"""A chapter's papermill parameters: read from its ``parameters`` cell without running it, overrides checked.

Chapters are MyST Markdown notebooks (jupytext) with one code cell tagged ``parameters``: a flat block of
``name: type = <literal>  # help`` lines, which ``papermill --help-notebook`` lists with their types and help.
Overrides are checked against those types and defaults here, because papermill itself only warns.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import jupytext
import nbformat

__all__ = [
    "PARAMETER_TYPES",
    "declared_parameters",
    "notebook_parameters",
    "read_notebook",
    "validate_parameters",
]


def read_notebook(path: str | os.PathLike) -> nbformat.NotebookNode:
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
    cells = _parameters_cells(read_notebook(path))
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


def declared_parameters(path: str | os.PathLike) -> set[str]:
    """The names of a notebook's parameters; none when it has no ``parameters`` cell."""
    return set(notebook_parameters(path)) if _parameters_cells(read_notebook(path)) else set()
