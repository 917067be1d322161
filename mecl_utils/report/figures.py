"""The book's figures: they draw what they are handed and compute nothing.

Each draws, at the scale of the chosen profile, a figure of Bakhtiarnia, Zhang & Iosifidis (2021) or what
lies behind one:

- ``image_grid``, ``easy_hard_grid``: Fig. 3 and Fig. 4, the easiest and hardest training images by a
  teacher's loss, with their ground-truth labels;
- ``loss_histograms``: the distribution of those teacher losses (not in the paper);
- ``learning_curves``: validation accuracy per epoch of the four training methods (the paper reports final
  accuracies only);
- ``search_heatmap``: the hyper-parameter-split accuracy of a search, one cell per setting, the chosen one
  starred;
- ``paired_repetitions``: the per-repetition test accuracies behind a Table IV mean ± std, one line per
  repetition, since the four methods of a repetition share their initial weights;
- ``strategy_exit_accuracies``: each exit's test accuracy per way of training a whole network (the paper's
  Sec. V question);
- ``accuracy_cost_curves``, ``exit_histogram``: a multi-exit network's accuracy against cost, and where its
  test samples leave;
- ``forest``: every case's difference from vanilla with its interval beside the pooled one (a forest plot),
  and ``interval_narrowing``: how an interval's half-width shrinks as repetitions are added, against their
  CPU cost.

Every number a figure draws (a histogram's bins and median, the curves per epoch in %, a search's grid and
its best cell, each case's accuracies per repetition and their means, the accuracies per exit and their
means, the band of accuracy-cost curves, the share of samples per exit) comes from ``figure_data``.
Functions return a ``matplotlib`` figure or axes; the notebooks call ``plt.show()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.protocol.results import METHOD_COLUMNS
from mecl_utils.report.strategy_tables import STRATEGY_NAMES

__all__ = [
    "METHOD_COLORS",
    "accuracy_cost_curves",
    "condition_differences",
    "difficulty_scores",
    "easy_hard_grid",
    "exit_histogram",
    "forest",
    "image_grid",
    "interval_narrowing",
    "learning_curves",
    "loss_histograms",
    "paired_repetitions",
    "search_heatmap",
    "strategy_exit_accuracies",
]

METHOD_COLORS = {"vanilla": "C7", "curriculum": "C0", "anti": "C3", "random": "C2"}


def image_grid(images, labels, *, titles=None, ncols: int = 8, size: float = 1.2, suptitle: str = ""):
    """Images in a grid, each titled with its label (or ``titles``); unused cells stay blank."""
    images = np.asarray(images)
    nrows = max(1, math.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + 0.5)), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= len(images):
            continue
        image = images[index]
        if image.ndim == 3 and image.shape[-1] == 1:
            ax.imshow(image[..., 0], cmap="gray_r", vmin=0, vmax=255)
        else:
            ax.imshow(image)
        ax.set_title(str(titles[index] if titles is not None else labels[index]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def easy_hard_grid(images, labels, losses, *, class_names=None, title: str = ""):
    """Fig. 3/4 in one figure: the first half of ``images`` on top (the easiest, from
    ``figure_data.easiest_and_hardest``), the second half below (the hardest).

    Titles give the ground-truth label (not the teacher's prediction) and the teacher's loss.
    """
    n = len(images) // 2
    names = [str(class_names[y]) if class_names is not None else str(y) for y in labels]
    titles = [f"{name}\n{abs(loss):.2g}" for name, loss in zip(names, losses, strict=True)]
    fig = image_grid(images, names, titles=titles, ncols=n, suptitle=title)
    for ax, text in ((fig.axes[0], "easiest"), (fig.axes[n], "hardest")):
        ax.text(-0.3, 0.5, text, rotation=90, va="center", ha="right", transform=ax.transAxes)
    return fig


def loss_histograms(histograms: Mapping[str, tuple]):
    """One histogram per teacher of its per-sample losses, on a log axis (losses span many decades):
    ``figure_data.loss_histogram_bins``, name -> (losses, bin edges, median)."""
    fig, axes = plt.subplots(1, len(histograms), figsize=(4 * len(histograms), 3), squeeze=False, sharey=True)
    for ax, (name, (values, edges, median)) in zip(axes.flat, histograms.items(), strict=True):
        ax.hist(values, bins=edges, color="C0")
        ax.axvline(median, color="C3", linestyle="--", label="median")
        ax.set(xscale="log", xlabel="teacher loss (cross-entropy)", title=f"teacher: {name}")
        ax.legend()
    axes.flat[0].set_ylabel("training images")
    fig.tight_layout()
    return fig


def learning_curves(curves, ylabel: str, ax=None):
    """Per-epoch curves, one line per (name, values) of ``curves`` (``figure_data.epoch_curves``), the
    y axis labelled ``ylabel`` (``figure_data.curve_label``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves:
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=name, color=METHOD_COLORS.get(name))
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return ax.figure


def search_heatmap(grid: pd.DataFrame, best: tuple, title: str = ""):
    """A search's hyper-parameter-split accuracy (%) over two of its settings (``figure_data.search_grid``,
    e.g. optimizer × learning rate); the ``best`` cell (``figure_data.best_cell``: (row, column) labels), the
    one the search keeps, is starred."""
    values = grid.to_numpy()
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * grid.shape[1], 0.9 + 0.6 * grid.shape[0]))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        text = f"{value:.1f}" + (" ★" if (grid.index[i], grid.columns[j]) == best else "")
        ax.text(j, i, text, ha="center", va="center", color="white" if value < 60 else "black")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set(xlabel=grid.columns.name, ylabel=grid.index.name, title=title)
    fig.colorbar(image, ax=ax, label="hparam-split accuracy (%)")
    return fig


def paired_repetitions(accuracies: Mapping[tuple, pd.DataFrame], means: Mapping[tuple, pd.Series]):
    """Test accuracy per method, one grey line per repetition (shared initial weights), their mean as a bar,
    one axis per case (``figure_data.repetition_accuracies``: (backbone, dataset, branch) -> repetitions ×
    methods, in %; ``figure_data.repetition_means``: case -> each method's mean)."""
    fig, axes = plt.subplots(1, len(accuracies), figsize=(4.5 * len(accuracies), 3.5), squeeze=False)
    for ax, ((backbone, dataset, branch), table) in zip(axes.flat, accuracies.items(), strict=True):
        x = np.arange(len(table.columns))
        for _, accuracy in table.iterrows():
            ax.plot(x, accuracy.to_numpy(), color="grey", alpha=0.6, marker="o")
        colors = [METHOD_COLORS.get(m.split()[-1], "k") for m in table]  # "distilled vanilla": vanilla's
        ax.scatter(
            x, means[(backbone, dataset, branch)], color=colors, s=160, marker="_", linewidths=3, zorder=3
        )  # means
        names = [METHOD_COLUMNS.get(m, m) for m in table.columns]
        ax.set_xticks(x, [name.replace(" ", "\n") for name in names])  # "distilled\ncurriculum": side by side
        ax.set(title=f"{backbone} / {dataset} / branch {branch}", ylabel="test accuracy (%)")
    fig.tight_layout()
    return fig


def strategy_exit_accuracies(points: pd.DataFrame, means: pd.Series, split: str = "test"):
    """Each exit's accuracy on ``split`` per strategy: one panel per strategy, vanilla and curriculum side by
    side, each run a dot, the mean a bar (``figure_data.strategy_exit_points``, ``strategy_exit_means``)."""
    strategies = list(dict.fromkeys(points["strategy"]))
    exits = list(dict.fromkeys(points["exit"]))
    fig, axes = plt.subplots(
        1, len(strategies), figsize=(3.6 * len(strategies), 3.4), sharey=True, squeeze=False
    )
    for ax, strategy in zip(axes.flat, strategies, strict=True):
        group = points[points["strategy"] == strategy]
        for offset, (method, color) in zip(
            (-0.12, 0.12), (("vanilla", "C7"), ("curriculum", "C0")), strict=True
        ):
            runs = group[group["method"] == method]
            for index, name in enumerate(exits):
                values = runs.loc[runs["exit"] == name, "accuracy"]
                mean = means.get((strategy, method, name), np.nan)
                ax.scatter(np.full(len(values), index + offset), values, color=color, s=18, alpha=0.7)
                ax.scatter([index + offset], [mean], color=color, marker="_", s=200, linewidths=3,
                           label=method if index == 0 else None)  # fmt: skip
        ax.set_xticks(range(len(exits)), exits)
        ax.set(title=STRATEGY_NAMES.get(strategy, strategy), xlabel="exit")
    axes.flat[0].set_ylabel(f"{split} accuracy (%)")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_cost_curves(
    bands: pd.DataFrame,
    exit_points: pd.DataFrame,
    classifier: tuple[float, float],
    oracle: pd.DataFrame | None = None,
    ax=None,
):
    """Test accuracy against mean cost per method: the mean over repetitions with a min-max band
    (``figure_data.cost_bands``), each exit's own accuracy as a point (``exit_points``: method, cost,
    accuracy), the plain classifier, and the oracle's mean (``figure_data.oracle_means``) as a hollow
    marker."""
    ax = ax or plt.subplots(figsize=(7.5, 4.2))[1]
    for method in METHODS:
        if method not in bands.index.get_level_values("method"):
            continue
        band = bands.loc[method]
        color = METHOD_COLORS[method]
        ax.plot(band.index, 100 * band["mean"], color=color, label=method)
        ax.fill_between(band.index, 100 * band["min"], 100 * band["max"], color=color, alpha=0.15)
        points = exit_points[exit_points["method"] == method]
        ax.scatter(points["cost"], 100 * points["accuracy"], color=color, s=25, zorder=3)
        if oracle is not None and method in oracle.index:
            best = oracle.loc[method]
            ax.scatter([best["cost"]], [100 * best["accuracy"]], facecolors="none", edgecolors=color, s=70)
    ax.scatter(
        [classifier[0]],
        [100 * classifier[1]],
        marker="*",
        s=160,
        color="k",
        label="classifier alone",
        zorder=4,
    )
    ax.set(xlabel="mean cost (fraction of the full multi-exit network's MACs)", ylabel="test accuracy (%)")
    ax.legend(fontsize=8)
    return ax


def exit_histogram(shares: pd.DataFrame, ax=None):
    """Share of test samples leaving at each exit (``figure_data.exit_shares``: one row per method, one
    column per exit, in %)."""
    ax = ax or plt.subplots(figsize=(6.5, 3))[1]
    shares.T.plot.bar(ax=ax, rot=0, color=[METHOD_COLORS.get(m) for m in shares.index])
    ax.set(xlabel="exit", ylabel="test samples (%)")
    return ax


def forest(rows: pd.DataFrame, unit: str = "points", ax=None):
    """One line per row of ``rows`` (columns ``label``, ``difference``, ``low``, ``high``, ``pooled``): the
    difference as a dot, its interval as a bar; pooled rows as diamonds, below a rule."""
    ax = ax or plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))[1]
    y = np.arange(len(rows))[::-1]
    for position, (_, row) in zip(y, rows.iterrows(), strict=True):
        marker, color = ("D", "black") if row["pooled"] else ("o", METHOD_COLORS["curriculum"])
        ax.plot([row["low"], row["high"]], [position, position], color=color, lw=2)
        ax.plot(row["difference"], position, marker=marker, color=color, ms=7)
    pooled = rows["pooled"].to_numpy()
    if pooled.any() and not pooled.all():
        ax.axhline(y[pooled].max() + 0.5, color="grey", lw=0.5)
    ax.axvline(0, color="grey", ls="--", lw=1)
    ax.set_yticks(y, rows["label"])
    ax.set_xlabel(f"difference from vanilla ({unit}), 95 % interval")
    return ax


def interval_narrowing(curve: pd.DataFrame, ax=None):
    """Half-width of the interval against repetitions, one line per ``case`` of ``curve``; observed counts as
    filled dots, predicted ones hollow."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    for case, group in curve.groupby("case", sort=False):
        line = ax.plot(group["repetitions"], group["half width"], label=case)[0]
        observed = group["observed"].to_numpy()
        ax.plot(group["repetitions"][observed], group["half width"][observed], "o", color=line.get_color())
        ax.plot(
            group["repetitions"][~observed],
            group["half width"][~observed],
            "o",
            mfc="white",
            color=line.get_color(),
        )
    ax.set_xlabel("repetitions (filled: run; hollow: predicted from the runs' SD)")
    ax.set_ylabel("half-width of the 95 % interval (points)")
    ax.set_yscale("log")
    ax.legend(fontsize="small")
    return ax


def condition_differences(comparisons: pd.DataFrame):
    """One panel per comparison of ``comparisons`` (``condition_tables.condition_comparisons``): per
    condition along x, each (case, measure of difficulty) as a dot with its 95 % interval, zero dashed."""
    labels = list(dict.fromkeys(comparisons["comparison"]))
    conditions = list(dict.fromkeys(comparisons["condition"]))
    series = list(dict.fromkeys(zip(comparisons["case"], comparisons["teacher"], strict=True)))
    fig, axes = plt.subplots(1, len(labels), figsize=(5 * len(labels), 3.8), sharey=True, squeeze=False)
    offsets = np.linspace(-0.2, 0.2, len(series)) if len(series) > 1 else [0.0]
    for ax, label in zip(axes.flat, labels, strict=False):
        rows = comparisons[comparisons["comparison"] == label]
        for offset, (case, teacher) in zip(offsets, series, strict=True):
            part = rows[(rows["case"] == case) & (rows["teacher"] == teacher)]
            x = np.array([conditions.index(c) for c in part["condition"]]) + offset
            error = [part["difference"] - part["low"], part["high"] - part["difference"]]
            name = teacher if len({c for c, _ in series}) == 1 else f"{case}, {teacher}"
            ax.errorbar(x, part["difference"], yerr=error, fmt="o", capsize=3, label=name)
        ax.axhline(0, color="grey", ls="--", lw=1)
        ax.set_xticks(range(len(conditions)), conditions, rotation=15)
        ax.set_title(label)
    axes.flat[0].set_ylabel("difference (points), 95 % interval")
    axes.flat[-1].legend(fontsize="small", title="ordered by")
    fig.tight_layout()
    return fig


# What the low end of each whole-number score means, for its histogram's axis.
SCORE_SCALES = {
    "prediction_depth": "0: settled at the first probe",
    "exit_agreement": "0: settled at the first exit",
    "forgetting_events": "times forgotten; the highest: never learned",
}


def difficulty_scores(images, labels, scores, picks, name: str, *, class_names=None):
    """A whole-number difficulty score seen two ways: the share of training images at each value, then the
    images at ``picks`` (``figure_data.easiest_and_hardest``) as an ``easy_hard_grid``."""
    scores = np.asarray(scores)
    shares = pd.Series(scores).value_counts(normalize=True).sort_index()
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.bar(shares.index.astype(int), 100 * shares.to_numpy())
    ax.set_xticks(shares.index.astype(int))
    scale = SCORE_SCALES.get(name)
    ax.set(xlabel=f"{name} ({scale})" if scale else name, ylabel="% of training images")
    grid = easy_hard_grid(
        np.asarray(images)[picks], np.asarray(labels)[picks], scores[picks], class_names=class_names,
        title=f"by {name}: easiest (top) and hardest (bottom)",
    )  # fmt: skip
    return fig, grid
