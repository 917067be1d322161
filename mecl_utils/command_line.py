"""The command line's arguments (``python -m mecl_utils``): its parser, and a checked type per argument.

Each type turns the text of one argument into its value or raises ``argparse.ArgumentTypeError`` with what
was expected, so that a mistyped argument ends in argparse's one-line usage error before any work.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from mecl_utils.curriculum.difficulty import SCORES
from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.evidence import POWER
from mecl_utils.protocol.profiles import FEATURE_MODES, PROFILES
from mecl_utils.protocol.runs import Case
from mecl_utils.report.evidence_tables import DEFAULT_MIN_EFFECT
from mecl_utils.statistics import ALPHA

__all__ = ["parse_case", "parser", "workers"]


def parse_case(text: str) -> Case:
    parts = text.split("/")
    if len(parts) != 3 or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(
            f"--case must look like backbone/dataset/branch, e.g. mobilenet/cifar10/1, got {text!r}"
        )
    return Case(parts[0], parts[1], int(parts[2]))


def workers(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--workers must be a whole number >= 0, got {text!r}")
    return int(text)


def _repetitions(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--repetitions must be a whole number >= 1, got {text!r}")
    return int(text)


def _condition(text: str):
    from mecl_utils.protocol.conditions import parse_condition

    try:
        return parse_condition(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, e.g. 0.05, got {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of points, e.g. 2, got {text!r}")
    return value


def _where(text: str) -> tuple[str, str]:
    field, equals, value = text.partition("=")
    if not equals or not field:
        raise argparse.ArgumentTypeError(
            f"--where must look like FIELD=VALUE, e.g. feature_mode=memory, got {text!r}"
        )
    return field, value


def parser(description: str) -> argparse.ArgumentParser:
    """The parser of ``python -m mecl_utils`` and its commands; ``description``: the usage it prints."""
    command_line = argparse.ArgumentParser(
        prog="python -m mecl_utils",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = command_line.add_subparsers(dest="command", required=True)
    for name in ("run", "table", "stats", "exits", "plan"):
        command = commands.add_parser(name)
        command.add_argument("--profile", choices=list(PROFILES), default="smoke")
        command.add_argument("--results", type=Path, help="results CSV (default: in the cache directory)")
    run = commands.choices["run"]
    run.add_argument(
        "--data-dir", help="folder holding cifar-10-batches-py/ (default: $MECL_DATA_DIR, Keras)"
    )
    run.add_argument("--case", type=parse_case, action="append", help="only this case (repeatable)")
    run.add_argument("--method", nargs="+", choices=METHODS, default=list(METHODS))
    run.add_argument(
        "--workers",
        type=workers,
        help="parallel Ray tasks of the embedded local instance (default: $MECL_WORKERS, else one per "
        "CPU core, 1 with a GPU; 0: no Ray, one run after another in this process)",
    )
    run.add_argument(
        "--address",
        help="an existing Ray cluster to run on, e.g. 10.0.0.5:6379 (default: $RAY_ADDRESS; none: an "
        "embedded instance on this machine, on 127.0.0.1 only)",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show Keras progress while training networks, Ray's and the workers' output, and tracebacks",
    )
    for name in ("table", "stats", "exits", "plan"):
        commands.choices[name].add_argument("--verbose", action="store_true", help="show tracebacks")
    for name in ("table", "stats", "exits"):
        commands.choices[name].add_argument(
            "--where",
            type=_where,
            action="append",
            metavar="FIELD=VALUE",
            help="only the results rows whose FIELD (a column of the results CSV) is VALUE, e.g. "
            "feature_mode=memory, to keep one configuration where the file holds several (repeatable)",
        )
    for name in ("run", "plan"):
        commands.choices[name].add_argument(
            "--repetitions",
            type=_repetitions,
            help="repetitions of the final stage for every method (default: the profile's); vanilla and "
            "curriculum keep at least the profile's main_repetitions. The first N of a larger count are the "
            "same runs, so raising it trains only the new repetitions",
        )
        commands.choices[name].add_argument(
            "--condition",
            type=_condition,
            action="append",
            metavar="NAME=FRACTION,...",
            help="also train the repetitions under this training condition, e.g. budget=0.25, "
            "label_noise=0.2 or train_fraction=0.5 (combined with commas; repeatable): one more stage of "
            "every case, with Table IV's choices and seeds",
        )
        commands.choices[name].add_argument(
            "--score",
            choices=SCORES,
            action="append",
            help="a difficulty score the conditions stage also orders curriculum and anti-curriculum by, "
            "beside Table IV's teacher (repeatable; without --condition, under the paper's condition)",
        )
        commands.choices[name].add_argument(
            "--feature-mode",
            choices=["auto", *FEATURE_MODES],
            help="where branch features live: memory, float16 shards on disk, or the backbone cut at the "
            "branch layer inside the training graph (default: the profile's, 'auto': by size)",
        )
    stats = commands.choices["stats"]
    stats.add_argument("--format", choices=["markdown", "csv"], default="markdown")
    stats.add_argument(
        "--min-effect",
        type=_positive,
        default=DEFAULT_MIN_EFFECT,
        help="the difference in points that power and repetitions needed are for (default: %(default)s)",
    )
    stats.add_argument("--alpha", type=_fraction, default=ALPHA, help="test level (default: %(default)s)")
    stats.add_argument("--power", type=_fraction, default=POWER, help="power wanted (default: %(default)s)")
    exits = commands.choices["exits"]
    exits.add_argument(
        "--data-dir", help="folder holding cifar-10-batches-py/ (default: $MECL_DATA_DIR, Keras)"
    )
    commands.choices["plan"].add_argument(
        "--data-dir",
        help="as for run: read only when the cache holds feature shards of a case's layer, to tell whether "
        "they are complete for the case (default: $MECL_DATA_DIR, Keras)",
    )
    exits.add_argument("--policy", choices=["confidence", "entropy", "patience"], default="confidence")
    exits.add_argument(
        "--calibration", choices=["hparam", "val"], default="hparam", help="split for thresholds"
    )
    exits.add_argument(
        "--budget", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0],
        help="cost budgets, fractions of the full multi-exit network's MACs",
    )  # fmt: skip
    return command_line
