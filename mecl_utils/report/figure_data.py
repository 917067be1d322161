"""The numbers the book's figures draw, computed from results apart from the drawing (``figures``).

A figure is handed what it shows: the easiest and hardest training images by a teacher's loss
(``easiest_and_hardest``), a search's accuracy over two of its settings (``search_grid``), each
case's test accuracy per repetition and method (``repetition_accuracies``), the mean and min-max band of a
method's accuracy-cost curves over its repetitions (``cost_bands``) and the oracle's mean point
(``oracle_means``), the share of test samples leaving at each exit (``exit_shares``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.protocol.results import require_one_configuration

__all__ = [
    "cost_bands",
    "easiest_and_hardest",
    "exit_shares",
    "oracle_means",
    "repetition_accuracies",
    "search_grid",
]


def easiest_and_hardest(losses, n: int) -> np.ndarray:
    """Indices of the ``n`` lowest-loss samples, easiest first, then of the ``n`` highest-loss ones, hardest
    first (Fig. 3 and 4). Among equal losses the easiest come in the samples' order, the hardest in
    reverse."""
    ranked = np.argsort(np.asarray(losses), kind="stable")
    return np.concatenate([ranked[:n], ranked[::-1][:n]])


def search_grid(frame: pd.DataFrame, index: str, columns: str) -> pd.DataFrame:
    """The mean ``accuracy`` of a search's runs (in %) over two of its settings, e.g. optimizer × learning
    rate: one row per ``index`` value, one column per ``columns`` value, each axis named after its setting."""
    return frame.pivot_table(index=index, columns=columns, values="accuracy") * 100


def repetition_accuracies(reps: pd.DataFrame, methods=METHODS) -> dict[tuple, pd.DataFrame]:
    """Test accuracy (%) per case, (backbone, dataset, branch) -> one row per repetition, one column per
    method of ``methods`` that was run, in that order. Repetitions of different configurations are refused,
    never averaged (``require_one_configuration``)."""
    require_one_configuration(reps)
    accuracies = {}
    for case, group in reps.groupby(["backbone", "dataset", "branch"], sort=False):
        table = group.pivot_table(index="repetition", columns="method", values="accuracy") * 100
        accuracies[case] = table[[m for m in methods if m in table]]
    return accuracies


def cost_bands(on_grid: pd.DataFrame) -> pd.DataFrame:
    """Per method and cost of ``on_grid`` (``accuracy_cost.curves_on_grid``): the ``mean``, ``min`` and
    ``max`` accuracy over the method's repetitions, indexed by (method, cost)."""
    return on_grid.groupby(["method", "cost"])["accuracy"].agg(["mean", "min", "max"])


def oracle_means(oracle: pd.DataFrame) -> pd.DataFrame:
    """The oracle's mean ``cost`` and ``accuracy`` over each method's runs, indexed by method (``oracle``:
    ``accuracy_cost.oracle_outcomes``)."""
    return oracle.groupby("method")[["cost", "accuracy"]].mean()


def exit_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """Per method (row), the share (%) of its test samples leaving at each exit (column) of ``counts``."""
    return counts.div(counts.sum(axis=1), axis=0) * 100
