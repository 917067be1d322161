"""Figures and tables of the mecl book: whatever a chapter draws twice, or whatever is worth a test.

Each function reproduces, at the scale of the chosen profile, a figure or table of Bakhtiarnia, Zhang &
Iosifidis (2021), or draws what lies behind one:

- ``profile_note``: the admonition a chapter with results opens with (which profile and data made them);
- ``profile_table``: what each profile runs (data, networks, search grids, number of branch runs);
- ``paper_accuracy``: a network's test accuracy in the paper's Table I, for tables that set ours beside it;
- ``image_grid``, ``easy_hard_grid``: Fig. 3 and Fig. 4, the easiest and hardest training images by a
  teacher's loss, with their ground-truth labels;
- ``loss_histograms``: the distribution of those teacher losses (not in the paper);
- ``learning_curves``: validation accuracy per epoch of the four training methods (the paper reports final
  accuracies only);
- ``search_heatmap``: the hyper-parameter-split accuracy of a search, one cell per setting, the chosen one
  starred;
- ``paired_repetitions``: the per-repetition test accuracies behind a Table IV mean ± std, one line per
  repetition, since the four methods of a repetition share their initial weights;
- ``mean_std``, ``p_text``, ``format_table_iv``, ``style_table_iv``: Table IV as text, best mean in bold,
  each method's difference from vanilla with its 95 % interval and the p-value the book's rule reads
  (``style_table_iv`` folded to fit a page); ``closest_paper_rows``: the paper's rows to compare with;
- ``machine_table``: the processor, versions and folders of the machine running a page;
- ``case_verdict``, ``verdict_sentence``: the plain reading of one Table IV row (the comparisons with
  vanilla fixed in advance by ``statistics``: curriculum first, then anti and random Holm-corrected, each
  with its interval), as a dict and as sentences;
- ``timing_summary``: measured seconds per stage of the protocol, from a results frame;
- ``accuracy_cost_curves``, ``exit_histogram``: a multi-exit network's accuracy against cost, and where its
  test samples leave.

Functions return a ``matplotlib`` figure or axes (the notebooks call ``plt.show()``), a ``pandas`` object,
a string of MyST Markdown, or the numbers such a table or sentence is made of.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mecl_utils.cache import cache_dir
from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.networks.backbones import NETWORKS
from mecl_utils.protocol.profiles import Profile, get_profile
from mecl_utils.protocol.results import METHOD_COLUMNS, require_one_configuration
from mecl_utils.protocol.runs import cases
from mecl_utils.protocol.stages import planned_runs
from mecl_utils.report.statistics import (
    ALPHA,
    CONFIDENCE,
    PRIMARY,
    SECONDARY,
    PairedDifference,
    interval_text,
    passes,
    reading,
)

__all__ = [
    "accuracy_cost_curves",
    "case_verdict",
    "closest_paper_rows",
    "difference_text",
    "easy_hard_grid",
    "exit_histogram",
    "format_table_iv",
    "image_grid",
    "learning_curves",
    "loss_histograms",
    "machine_table",
    "mean_std",
    "p_column",
    "p_text",
    "paired_repetitions",
    "paper_accuracy",
    "profile_note",
    "profile_table",
    "search_heatmap",
    "style_table_iv",
    "timing_summary",
    "verdict_sentence",
]

METHOD_COLORS = {"vanilla": "C7", "curriculum": "C0", "anti": "C3", "random": "C2"}
PROSE_NAMES = {
    "Vanilla": "vanilla",
    "Curriculum": "curriculum",
    "Anti": "anti-curriculum",
    "Random": "random curriculum",
}
STAGES = ("vanilla_search", "curriculum_search", "repetition")
PREPARATION = ("data_seconds", "networks_seconds", "features_seconds")


def profile_note(profile: str | Profile, reason: str = "", data_source: str | None = None) -> str:
    """A MyST ``{note}`` saying which profile and data produced a chapter's numbers, and why."""
    settings = get_profile(profile) if isinstance(profile, str) else profile
    if settings.name == "smoke":
        body = (
            "These numbers come from the offline **smoke** profile on 8×8 digits (scikit-learn's bundled "
            "set) with a tiny CNN as backbone, not CIFAR-10 and not the paper's networks. They show that "
            "every step runs; they are no evidence for or against the paper. For CIFAR-10, run "
            "`make book PROFILE=book DATA_DIR=…` (see *How to reproduce*)."
        )
    elif settings.name == "book":
        train = "all" if settings.n_train is None else f"{settings.n_train:,}"
        body = (
            f"These numbers come from the **book** profile: CIFAR-10 with {train} training images, "
            f"{', '.join(settings.backbones)} (α = {settings.mobilenet_alpha}) at "
            f"{settings.image_size}×{settings.image_size} pixels and {settings.repetitions} repetitions. "
            "That is far smaller than the paper's set-up: compare directions, not decimals."
        )
    else:
        body = (
            f"These numbers come from the **{settings.name}** profile: "
            f"{', '.join(settings.datasets)}, backbones {', '.join(settings.backbones)}, "
            f"{settings.repetitions} repetitions."
        )
    lines = [":::{note}", body]
    if data_source:
        lines.append(f"Data read from: `{data_source}`.")
    if reason:
        lines.append(f"Why this profile: {reason}")
    return "\n\n".join(lines) + "\n:::\n"


def profile_table(profiles: Mapping[str, Profile]) -> pd.DataFrame:
    """What each profile runs, one column per profile: data, networks, search grids and branch runs."""
    rows = {}
    for name, settings in profiles.items():
        runs_per_case, n_cases = planned_runs(settings), len(cases(settings))
        rows[name] = {
            "data sets": ", ".join(settings.datasets),
            "backbones": ", ".join(settings.backbones),
            "teachers": ", ".join(settings.teachers),
            "training images": "all" if settings.n_train is None else settings.n_train,
            "optimizer × learning rate": f"{len(settings.optimizers)} × {len(settings.learning_rates)}",
            "teacher × pacing": f"{len(settings.teachers)} × {len(settings.pacings)}",
            "repetitions": settings.repetitions,
            "branch epochs": settings.branch_epochs,
            "cases": n_cases,
            "branch runs per case": runs_per_case,
            "branch runs in all": runs_per_case * n_cases,
        }
    return pd.DataFrame(rows)


def paper_accuracy(network: str, dataset: str = "cifar10") -> float:
    """Table I's test accuracy (%) of ``network`` on ``dataset`` ('cifar10' or 'cifar100'); NaN for a
    network that is not one of the paper's."""
    spec = NETWORKS.get(network)
    return np.nan if spec is None else 100 * getattr(spec, f"paper_accuracy_{dataset}")


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


def easy_hard_grid(images, labels, losses, *, n: int = 8, class_names=None, title: str = ""):
    """Fig. 3/4 in one figure: the ``n`` lowest-loss images on top, the ``n`` highest-loss ones below.

    Titles give the ground-truth label (not the teacher's prediction) and the teacher's loss.
    """
    losses = np.asarray(losses)
    ranked = np.argsort(losses, kind="stable")
    picks = np.concatenate([ranked[:n], ranked[::-1][:n]])
    names = [str(class_names[y]) if class_names is not None else str(y) for y in np.asarray(labels)[picks]]
    titles = [f"{name}\n{abs(losses[i]):.2g}" for name, i in zip(names, picks, strict=True)]
    fig = image_grid(np.asarray(images)[picks], names, titles=titles, ncols=n, suptitle=title)
    for ax, text in ((fig.axes[0], "easiest"), (fig.axes[n], "hardest")):
        ax.text(-0.3, 0.5, text, rotation=90, va="center", ha="right", transform=ax.transAxes)
    return fig


def loss_histograms(losses: dict, *, bins: int = 40, floor: float = 1e-6):
    """One histogram per teacher of its per-sample losses, on a log axis (losses span many decades)."""
    fig, axes = plt.subplots(1, len(losses), figsize=(4 * len(losses), 3), squeeze=False, sharey=True)
    for ax, (name, values) in zip(axes.flat, losses.items(), strict=True):
        values = np.clip(np.asarray(values, dtype=float), floor, None)
        edges = np.logspace(np.log10(floor), np.log10(max(values.max(), floor * 10)), bins + 1)
        ax.hist(values, bins=edges, color="C0")
        ax.axvline(np.median(values), color="C3", linestyle="--", label="median")
        ax.set(xscale="log", xlabel="teacher loss (cross-entropy)", title=f"teacher: {name}")
        ax.legend()
    axes.flat[0].set_ylabel("training images")
    fig.tight_layout()
    return fig


def _curve(value) -> list[float]:
    return json.loads(value) if isinstance(value, str) else list(value)


def learning_curves(rows: pd.DataFrame, *, column: str = "val_accuracy", label: str = "method", ax=None):
    """Per-epoch curves of ``column`` (a JSON list in the results store), one line per row.

    Accuracies are drawn in %; any other column (e.g. ``train_loss``) as stored.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    scale = 100 if "accuracy" in column else 1
    for _, row in rows.iterrows():
        values = np.asarray(_curve(row[column])) * scale
        name = str(row[label])
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=name, color=METHOD_COLORS.get(name))
    ylabel = column.replace("_", " ") + (" (%)" if scale == 100 else "")
    ylabel = ylabel.replace("val ", "validation ").replace("train ", "training ")
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return ax.figure


def search_heatmap(frame: pd.DataFrame, index: str, columns: str, title: str = ""):
    """The mean ``accuracy`` of a search's runs (in %) over two of its settings, e.g. optimizer × learning
    rate; the best cell, the one the search keeps, is starred."""
    grid = frame.pivot_table(index=index, columns=columns, values="accuracy") * 100
    values = grid.to_numpy()
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * grid.shape[1], 0.9 + 0.6 * grid.shape[0]))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    best = np.unravel_index(np.nanargmax(values), grid.shape)
    for (i, j), value in np.ndenumerate(values):
        text = f"{value:.1f}" + (" ★" if (i, j) == best else "")
        ax.text(j, i, text, ha="center", va="center", color="white" if value < 60 else "black")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set(xlabel=columns, ylabel=index, title=title)
    fig.colorbar(image, ax=ax, label="hparam-split accuracy (%)")
    return fig


def paired_repetitions(reps: pd.DataFrame, methods=METHODS):
    """Test accuracy per method, one grey line per repetition (shared initial weights), one axis per case."""
    require_one_configuration(reps)  # repetitions of different configurations are never averaged
    cases = list(reps.groupby(["backbone", "dataset", "branch"], sort=False))
    fig, axes = plt.subplots(1, len(cases), figsize=(4.5 * len(cases), 3.5), squeeze=False)
    for ax, ((backbone, dataset, branch), group) in zip(axes.flat, cases, strict=True):
        table = group.pivot_table(index="repetition", columns="method", values="accuracy") * 100
        table = table[[m for m in methods if m in table]]
        x = np.arange(len(table.columns))
        for _, accuracies in table.iterrows():
            ax.plot(x, accuracies.to_numpy(), color="grey", alpha=0.6, marker="o")
        colors = [METHOD_COLORS.get(m.split()[-1], "k") for m in table]  # "distilled vanilla": vanilla's
        ax.scatter(x, table.mean(), color=colors, s=160, marker="_", linewidths=3, zorder=3)  # means
        names = [METHOD_COLUMNS.get(m, m) for m in table.columns]
        ax.set_xticks(x, [name.replace(" ", "\n") for name in names])  # "distilled\ncurriculum": side by side
        ax.set(title=f"{backbone} / {dataset} / branch {branch}", ylabel="test accuracy (%)")
    fig.tight_layout()
    return fig


def mean_std(mean: float, std: float, digits: int = 2) -> str:
    """'71.71 ± 0.47'; the mean alone when the std is missing (a single repetition)."""
    if mean is None or pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" if std is None or pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def p_text(p: float) -> str:
    """A p-value for a table: '0.032', '<0.001', or '–' when there is none."""
    if p is None or pd.isna(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


SECONDARY_LABELS = tuple(METHOD_COLUMNS[method] for method in SECONDARY)
TABLE_IV_NOTE = (
    f"Under each mean: its difference from vanilla in points with the {CONFIDENCE * 100:.0f} % interval "
    "(Δ), and the paired t-test p-value the book reads. Curriculum against vanilla is the primary "
    "comparison, read as it is; anti-curriculum and random curriculum are secondary, their p-values "
    "Holm-corrected."
)


def p_column(label: str) -> str:
    """The text table's p-value column of a method: secondary ones are marked Holm-corrected."""
    return f"{label} p (Holm)" if label in SECONDARY_LABELS else f"{label} p"


def difference_text(difference: float, low: float, high: float) -> str:
    """'+1.23 [+0.50, +1.96]': a difference in points and its interval; '–' when there is none."""
    if difference is None or pd.isna(difference):
        return "–"
    interval = interval_text(low, high, unit="").strip()
    return f"{difference:+.2f}" if interval == "–" else f"{difference:+.2f} {interval}"


def format_table_iv(table: pd.DataFrame, *, bold: str = "") -> pd.DataFrame:
    """Table IV (``table_iv.table_iv`` layout) as strings; the best mean is wrapped in ``bold`` (e.g. '**').

    A method compared with vanilla gets its difference and interval (``<label> Δ``) and the p-value the
    rule reads (``p_column``); the paper's table, which has neither, gets neither.
    """
    rows = []
    for _, row in table.iterrows():
        out = {"Backbone": row["backbone"], "Dataset": row["dataset"], "Branch": int(row["branch"])}
        for label in METHOD_COLUMNS.values():
            if f"{label} mean" not in row:
                continue
            text = mean_std(row[f"{label} mean"], row[f"{label} std"])
            out[label] = f"{bold}{text}{bold}" if bold and label == row["best"] else text
            if f"{label} difference" in row:
                out[f"{label} Δ"] = difference_text(
                    row[f"{label} difference"], row[f"{label} low"], row[f"{label} high"]
                )
            if f"{label} p" in row:
                out[p_column(label)] = p_text(row[f"{label} p"])
        out.update(Opt=str(row["optimizer"]), LR=f"{float(row['learning_rate']):g}")
        out.update(Teacher=str(row["teacher"]), Pacing=str(row["pacing"]))
        rows.append(out)
    return pd.DataFrame(rows)


def style_table_iv(table: pd.DataFrame):
    """Table IV for a page: a pandas Styler narrow enough for the text column, best method in bold.

    The wide text layout of ``format_table_iv`` is folded for HTML: the case in one cell, each method's
    difference from vanilla, its interval and its p-value, each on a line of its own, under its mean, and
    the searches' choices in one last cell (optimiser and learning rate, then teacher, then pacing), so the
    table reads without scrolling sideways. A table with p-values carries ``TABLE_IV_NOTE`` as its caption.
    """
    text = format_table_iv(table).astype(str).map(html.escape)
    case = "<br><small>" + text["Dataset"] + " · branch " + text["Branch"] + "</small>"
    folded = pd.DataFrame({"Case": text["Backbone"] + case})
    tested = False
    for label in METHOD_COLUMNS.values():
        if label in text:
            lines = ""
            if f"{label} Δ" in text:
                interval_below = text[f"{label} Δ"].str.replace(" [", "<br>[", regex=False)
                lines += "<br><small>Δ " + interval_below + "</small>"
            if p_column(label) in text:
                tested = True
                holm = " (Holm)" if label in SECONDARY_LABELS else ""
                lines += f"<br><small>p{holm} " + text[p_column(label)] + "</small>"
            folded[label] = text[label].str.replace(" ± ", "&nbsp;±&nbsp;", regex=False) + lines
    choices = text["Opt"] + " " + text["LR"] + "<br><small>" + text["Teacher"] + "<br>" + text["Pacing"]
    folded["Choices"] = choices + "</small>"
    best = table["best"].to_numpy()

    def weight(row):
        return ["font-weight: bold" if column == best[row.name] else "" for column in row.index]

    compact = [
        {"selector": "td, th", "props": "font-size: 0.85em; padding: 0.2em 0.4em; text-align: left;"},
        {"selector": "td", "props": "vertical-align: top;"},  # a long interval may wrap; a mean ± std never
    ]
    styler = folded.style.apply(weight, axis=1).hide(axis="index").set_table_styles(compact)
    return styler.set_caption(TABLE_IV_NOTE) if tested else styler


def machine_table(results_path: str | os.PathLike) -> pd.DataFrame:
    """The machine running this page, one row per fact: processor, cores, GPUs, versions, folders."""
    import keras
    import tensorflow as tf

    machine = {
        "processor": platform.processor() or platform.machine(),
        "CPU cores visible": os.cpu_count(),
        "GPUs visible to TensorFlow": len(tf.config.list_physical_devices("GPU")),
        "Python": platform.python_version(),
        "TensorFlow": tf.__version__,
        "Keras": keras.__version__,
        "cache folder": str(cache_dir()),
        "results file": str(results_path),
    }
    return pd.Series(machine, name="value").to_frame()


def closest_paper_rows(paper: pd.DataFrame, ours: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The paper's Table IV rows to set beside ours, and a phrase saying why those.

    The rows of our own cases when the paper has them (the paper profile); otherwise (smoke, book) the
    paper's MobileNet on CIFAR-10, its set-up closest to a laptop's.
    """
    keys = ["backbone", "dataset", "branch"]
    same_case = paper.merge(ours[keys], on=keys)
    if len(same_case):
        return same_case, "the same backbones, data sets and branches as ours"
    closest = paper[(paper["backbone"] == "mobilenet") & (paper["dataset"] == "cifar10")]
    return closest, "MobileNet on CIFAR-10, the paper's set-up closest to this profile"


def case_verdict(row: pd.Series, alpha: float = ALPHA) -> dict:
    """The reading of one Table IV row: its comparisons with vanilla, in the order fixed in advance.

    ``comparisons`` holds the primary comparison (curriculum) first, then the secondary ones (anti, random;
    their p-values Holm-corrected by ``table_iv.table_iv``), those the row has: each with the method's
    label, ``role``, the difference from vanilla in points, its interval (``low``, ``high``), ``pairs``,
    the p-value the rule reads, whether it ``passes`` at ``alpha`` and its ``reading``. ``best`` is the
    best mean, for display only: no comparison is chosen by it.
    """
    comparisons = []
    for method in (PRIMARY, *SECONDARY):
        label = METHOD_COLUMNS[method]
        if pd.isna(row.get(f"{label} pairs", np.nan)):
            continue
        difference = PairedDifference(
            n=int(row[f"{label} pairs"]),
            mean=float(row[f"{label} difference"]),
            sd=np.nan,
            low=float(row[f"{label} low"]),
            high=float(row[f"{label} high"]),
            p=np.nan,
        )
        p, secondary = float(row[f"{label} p"]), method in SECONDARY
        comparisons.append(
            {
                "method": label,
                "role": "secondary" if secondary else "primary",
                "difference": difference.mean,
                "low": difference.low,
                "high": difference.high,
                "pairs": difference.n,
                "p": p,
                "passes": passes(p, difference.n, alpha),
                "reading": reading(difference, p, alpha, corrected=secondary),
            }
        )
    return {"best": str(row["best"]), "comparisons": comparisons}


def verdict_sentence(row: pd.Series, alpha: float = ALPHA) -> str:
    """``case_verdict`` of one Table IV row as MyST Markdown: the case in bold, then one sentence per
    comparison (primary first), each with its difference, interval and reading."""
    verdict = case_verdict(row, alpha)
    case = f"**{row['backbone']} / {row['dataset']} / branch {int(row['branch'])}**"
    if not verdict["comparisons"]:
        return f"{case}: there are no vanilla runs to compare with."
    sentences = []
    for comparison in verdict["comparisons"]:
        name = PROSE_NAMES[comparison["method"]]
        sentences.append(
            f"{name[0].upper()}{name[1:]} ({comparison['role']}) minus vanilla is "
            f"{comparison['difference']:+.2f} points: {comparison['reading']}."
        )
    return f"{case}: " + " ".join(sentences)


def timing_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Measured seconds per stage: preparation (the slowest record per case, summed) and training runs.

    ``count`` is the number of cases for the preparation rows, the number of runs for the training stages.
    The preparation timings are copied into every row of a case; a case prepared again from the cache
    records small numbers, so the largest value per case stands for the cold cost.
    """
    cases = results.groupby(["backbone", "dataset", "branch"], sort=False)
    rows = []
    for column in PREPARATION:
        if column in results:
            stage, seconds = column.removesuffix("_seconds"), float(cases[column].max().sum())
            rows.append({"stage": stage, "count": cases.ngroups, "seconds": seconds})
    for stage in STAGES:
        chosen = results[results["stage"] == stage]
        rows.append({"stage": stage, "count": len(chosen), "seconds": float(chosen["seconds"].sum())})
    summary = pd.DataFrame(rows).set_index("stage")
    summary.loc["total"] = [np.nan, summary["seconds"].sum()]
    return summary


def accuracy_cost_curves(
    on_grid: pd.DataFrame,
    exit_points: pd.DataFrame,
    classifier: tuple[float, float],
    oracle: pd.DataFrame | None = None,
    ax=None,
):
    """Test accuracy against mean cost per method: the mean over repetitions with a min-max band, each
    exit's own accuracy as a point (``exit_points``: method, cost, accuracy), the plain classifier, and the
    oracle's mean (``oracle``: method, cost, accuracy) as a hollow marker."""
    ax = ax or plt.subplots(figsize=(7.5, 4.2))[1]
    for method in METHODS:
        runs = on_grid[on_grid["method"] == method]
        if runs.empty:
            continue
        by_cost = runs.groupby("cost")["accuracy"]
        color = METHOD_COLORS[method]
        ax.plot(by_cost.mean().index, 100 * by_cost.mean(), color=color, label=method)
        ax.fill_between(
            by_cost.min().index, 100 * by_cost.min(), 100 * by_cost.max(), color=color, alpha=0.15
        )
        points = exit_points[exit_points["method"] == method]
        ax.scatter(points["cost"], 100 * points["accuracy"], color=color, s=25, zorder=3)
        if oracle is not None and method in set(oracle["method"]):
            best = oracle[oracle["method"] == method][["cost", "accuracy"]].mean()
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


def exit_histogram(counts: pd.DataFrame, ax=None):
    """Share of test samples leaving at each exit (``counts``: one row per method, one column per exit)."""
    ax = ax or plt.subplots(figsize=(6.5, 3))[1]
    shares = counts.div(counts.sum(axis=1), axis=0) * 100
    shares.T.plot.bar(ax=ax, rot=0, color=[METHOD_COLORS.get(m) for m in shares.index])
    ax.set(xlabel="exit", ylabel="test samples (%)")
    return ax
