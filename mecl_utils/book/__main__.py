"""The book runner: executes every chapter notebook with papermill, then renders the book with Jupyter Book.

    python -m mecl_utils.book build --profile auto     # what `make book` runs
    python -m mecl_utils.book params notebooks/pacing.md
    python -m mecl_utils.book run notebooks/pacing.md out.ipynb -p batch_size 128

``build`` picks the profile (``profile_choice``), executes the chapters and renders them (``build``);
``params`` lists a chapter's parameters and ``run`` executes one chapter with checked overrides
(``parameters``, ``kernel``).
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from pathlib import Path

from papermill.exceptions import PapermillExecutionError

from mecl_utils import quiet
from mecl_utils.book.build import build_book
from mecl_utils.book.kernel import execute_notebook
from mecl_utils.book.parameters import notebook_parameters
from mecl_utils.book.profile_choice import PROFILE_CHOICES
from mecl_utils.networks import data

__all__ = ["main"]


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


if __name__ == "__main__":
    raise SystemExit(main())
