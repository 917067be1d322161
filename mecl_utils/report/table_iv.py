"""Table IV (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. IV) built from the results store, and the paper's own.

For every case (backbone, dataset, branch): the mean ± standard deviation over repetitions of the branch's
test accuracy for vanilla, curriculum, anti-curriculum and random-curriculum training, with the chosen
optimizer, learning rate, teacher and pacing. We add what the paper does not report: each method's paired
difference from vanilla across repetitions (the methods of one repetition share their initial weights, so the
pairs are natural), with its 95 % interval and the p-value the book's rule reads
(``statistics.compare_with_baseline``: curriculum primary, anti and random secondary and Holm-corrected).
``PAPER_TABLE_IV`` holds the paper's own numbers, cited, so the book can show both tables side by side
(``closest_paper_rows`` picks the rows to compare with). ``format_table_iv`` writes either table as text, and
``style_table_iv`` folds it to fit a page, each difference from vanilla with its interval and p-value.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from mecl_utils.protocol.results import CASE, METHOD_COLUMNS, require_one_configuration
from mecl_utils.report.cells import difference_text, mean_std, p_text
from mecl_utils.statistics import CONFIDENCE, SECONDARY, compare_with_baseline

__all__ = [
    "PAPER_TABLE_IV",
    "TABLE_IV_NOTE",
    "closest_paper_rows",
    "format_table_iv",
    "p_column",
    "paper_table_iv",
    "style_table_iv",
    "table_iv",
]


def table_iv(results: pd.DataFrame) -> pd.DataFrame:
    """Table IV from the ``repetition`` rows of a results frame: one row per case.

    Columns: mean and std of test accuracy (in %) per method; per method compared with vanilla (as fixed in
    ``statistics``), its mean difference from vanilla in points (``difference``), the 95 % interval of that
    difference (``low``, ``high``), the number of pairs (``pairs``) and the p-value the rule reads (``p``:
    the primary comparison's own, the secondaries' Holm-corrected); the best mean (for display only: no
    test is chosen by it), the number of repetitions, and the chosen hyper-parameters.
    Rows of several configurations are refused, never averaged (``require_one_configuration``).
    """
    reps = results[results["stage"] == "repetition"]
    if reps.empty:
        raise ValueError("no repetition rows yet: run the protocol's final stage first")
    require_one_configuration(reps)
    rows = []
    for case, group in reps.groupby(CASE, sort=False):
        row = dict(zip(CASE, case, strict=True))
        accuracy = group.pivot_table(index="repetition", columns="method", values="accuracy") * 100
        for method, label in METHOD_COLUMNS.items():
            if method not in accuracy:
                continue
            values = accuracy[method].dropna()
            row[f"{label} mean"] = values.mean()
            row[f"{label} std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        if "vanilla" in accuracy:
            for method, compared in compare_with_baseline(accuracy).iterrows():
                label = METHOD_COLUMNS[method]
                row[f"{label} difference"] = compared["mean"]
                row[f"{label} low"], row[f"{label} high"] = compared["low"], compared["high"]
                row[f"{label} pairs"] = int(compared["n"])
                row[f"{label} p"] = compared["p adjusted"]
        means = {label: row[f"{label} mean"] for label in METHOD_COLUMNS.values() if f"{label} mean" in row}
        row["best"] = max(means, key=means.get)
        row["repetitions"] = len(accuracy)
        row.update(_chosen_settings(group))
        rows.append(row)
    return pd.DataFrame(rows)


def _chosen_settings(group: pd.DataFrame) -> dict:
    """The case's chosen optimizer, learning rate, teacher and pacing, from the methods that use them.

    Every method has the optimizer and learning rate; teacher and pacing come from the paced methods that
    were run (curriculum and anti have both, random only the pacing). Empty when none of them was run.
    """
    first = group.iloc[0]
    settings = {"optimizer": first["optimizer"], "learning_rate": first["learning_rate"]}
    for setting, methods in (
        ("teacher", ("curriculum", "anti")),
        ("pacing", ("curriculum", "anti", "random")),
    ):
        rows = group[group["method"].isin(methods)]
        settings[setting] = rows.iloc[0][setting] if len(rows) else ""
    return settings


PAPER_TABLE_IV = Path(__file__).with_name("paper_table_iv.csv")  # the paper's Table IV, transcribed


def paper_table_iv() -> pd.DataFrame:
    """The paper's Table IV in the layout of :func:`table_iv` (no p-values: the paper reports none)."""
    paper = pd.read_csv(PAPER_TABLE_IV, comment="#")
    rows = []
    for record in paper.to_dict("records"):
        row = {key: record[key] for key in CASE}
        for method, label in METHOD_COLUMNS.items():
            row[f"{label} mean"], row[f"{label} std"] = record[f"{method}_mean"], record[f"{method}_std"]
        row["best"] = max(METHOD_COLUMNS.values(), key=lambda label: row[f"{label} mean"])
        row["repetitions"] = 5
        row.update({key: record[key] for key in ("optimizer", "learning_rate", "teacher", "pacing")})
        rows.append(row)
    return pd.DataFrame(rows)


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


def format_table_iv(table: pd.DataFrame, *, bold: str = "") -> pd.DataFrame:
    """Table IV (``table_iv`` layout) as strings; the best mean is wrapped in ``bold`` (e.g. '**').

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
