"""The numbers the book's figures draw, computed from results apart from the drawing (``figures``).

A figure is handed what it shows: the easiest and hardest training images by a teacher's loss
(``easiest_and_hardest``) and the histogram of those losses (``loss_histogram_bins``), a run's values per
epoch (``epoch_curves``, labelled by ``curve_label``), a search's accuracy over two of its settings
(``search_grid``) and its best cell (``best_cell``), each case's test accuracy per repetition and method
(``repetition_accuracies``) and their means (``repetition_means``), each exit's accuracy per way of training
a whole network (``strategy_exit_points``, ``strategy_exit_means``), the mean and min-max band of a method's
accuracy-cost curves over its repetitions (``cost_bands``) and the oracle's mean point (``oracle_means``),
the share of test samples leaving at each exit (``exit_shares``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.protocol.results import require_one_configuration

__all__ = [
    "best_cell",
    "cost_bands",
    "curve_label",
    "easiest_and_hardest",
    "epoch_curves",
    "exit_shares",
    "loss_histogram_bins",
    "oracle_means",
    "rank_correlations",
    "repetition_accuracies",
    "repetition_means",
    "search_grid",
    "strategy_exit_means",
    "strategy_exit_points",
]


def easiest_and_hardest(losses, n: int) -> np.ndarray:
    """Indices of the ``n`` lowest-loss samples, easiest first, then of the ``n`` highest-loss ones, hardest
    first (Fig. 3 and 4). Among equal losses the easiest come in the samples' order, the hardest in
    reverse."""
    ranked = np.argsort(np.asarray(losses), kind="stable")
    return np.concatenate([ranked[:n], ranked[::-1][:n]])


def rank_correlations(scores: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Spearman's rank correlation between every two of ``scores`` (name -> one score per sample)."""
    from scipy import stats

    names = list(scores)
    return pd.DataFrame(
        [[stats.spearmanr(scores[a], scores[b]).statistic for b in names] for a in names],
        index=names,
        columns=names,
    )


def loss_histogram_bins(losses: Mapping, *, bins: int = 40, floor: float = 1e-6) -> dict[str, tuple]:
    """Per teacher of ``losses`` (name -> per-sample losses): its losses raised to ``floor`` (a log axis has
    no 0), ``bins`` log-spaced bin edges from ``floor`` to the largest loss (at least ten times ``floor``),
    and the median of the raised losses."""
    histograms = {}
    for name, values in losses.items():
        values = np.clip(np.asarray(values, dtype=float), floor, None)
        edges = np.logspace(np.log10(floor), np.log10(max(values.max(), floor * 10)), bins + 1)
        histograms[name] = (values, edges, float(np.median(values)))
    return histograms


def _in_percent(column: str) -> bool:
    return "accuracy" in column


def epoch_curves(rows: pd.DataFrame, column: str = "val_accuracy", label: str = "method") -> list[tuple]:
    """Per row of ``rows``, in order: its ``label`` and its per-epoch values of ``column`` (a JSON list in
    the results store), accuracies in %, any other column (e.g. ``train_loss``) as stored."""
    scale = 100 if _in_percent(column) else 1
    curves = []
    for _, row in rows.iterrows():
        value = row[column]
        values = json.loads(value) if isinstance(value, str) else list(value)
        curves.append((str(row[label]), np.asarray(values) * scale))
    return curves


def curve_label(column: str) -> str:
    """The axis label of ``epoch_curves(rows, column)``: 'validation accuracy (%)', 'training loss'."""
    label = column.replace("_", " ") + (" (%)" if _in_percent(column) else "")
    return label.replace("val ", "validation ").replace("train ", "training ")


def search_grid(frame: pd.DataFrame, index: str, columns: str) -> pd.DataFrame:
    """The mean ``accuracy`` of a search's runs (in %) over two of its settings, e.g. optimizer × learning
    rate: one row per ``index`` value, one column per ``columns`` value, each axis named after its setting."""
    return frame.pivot_table(index=index, columns=columns, values="accuracy") * 100


def best_cell(grid: pd.DataFrame) -> tuple:
    """The (row, column) labels of ``grid``'s highest value (``search_grid``: the setting a search keeps);
    the first of equal highest values, row by row."""
    row, column = np.unravel_index(np.nanargmax(grid.to_numpy()), grid.shape)
    return grid.index[row], grid.columns[column]


def repetition_accuracies(reps: pd.DataFrame, methods=METHODS) -> dict[tuple, pd.DataFrame]:
    """Test accuracy (%) per case, (backbone, dataset, branch) -> one row per repetition, one column per
    method of ``methods`` that was run, in that order. The branch is an integer even where the store reads
    the column as floats (a whole network's rows have no branch). Repetitions of different configurations
    are refused, never averaged (``require_one_configuration``)."""
    require_one_configuration(reps)
    accuracies = {}
    for (backbone, dataset, branch), group in reps.groupby(["backbone", "dataset", "branch"], sort=False):
        table = group.pivot_table(index="repetition", columns="method", values="accuracy") * 100
        accuracies[(backbone, dataset, int(branch))] = table[[m for m in methods if m in table]]
    return accuracies


def repetition_means(accuracies: Mapping[tuple, pd.DataFrame]) -> dict[tuple, pd.Series]:
    """Per case of ``repetition_accuracies``, each method's mean test accuracy (%) over its repetitions."""
    return {case: table.mean() for case, table in accuracies.items()}


def strategy_exit_points(rows: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Each whole-network run's accuracy (%) at each exit on ``split``: one row per run and exit (strategy,
    method, exit, accuracy), strategies in the order they first appear, the exits in name order with the
    final exit last."""
    prefix = f"{split}_accuracy_"
    exits = sorted(
        (c.removeprefix(prefix) for c in rows.columns if c.startswith(prefix)),
        key=lambda name: (name == "final", name),
    )
    points = rows[["strategy", "method", *(prefix + name for name in exits)]].melt(
        id_vars=["strategy", "method"], var_name="exit", value_name="accuracy"
    )
    return points.assign(exit=points["exit"].str.removeprefix(prefix), accuracy=100 * points["accuracy"])


def strategy_exit_means(points: pd.DataFrame) -> pd.Series:
    """The mean accuracy of ``strategy_exit_points`` per (strategy, method, exit)."""
    return points.groupby(["strategy", "method", "exit"], sort=False)["accuracy"].mean()


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
