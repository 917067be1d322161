"""Curriculum learning with distilled branches (the paper's Sec. V question): the table, figure and reading.

``strategy_comparisons.distillation_table`` holds, per case, the test accuracy of plain and distilled vanilla
and curriculum branches of the same repetitions, and their paired differences. The comparisons are fixed in
advance: curriculum against vanilla among distilled branches, one per case, read as it is (with the chance
caveat when several are read), and distillation's own effect, Holm-corrected across the cases. Every sentence
is built from those numbers with the rule and wording of ``statistics``: a test over fewer than
``statistics.MIN_REPETITIONS`` repetitions is not read, and one that does not pass is "not distinguishable"
with that many repetitions, never "no effect"; every difference carries its 95 % interval.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from mecl_utils.report.cells import case_label, difference_cell, mean_std
from mecl_utils.report.figure_data import repetition_accuracies, repetition_means
from mecl_utils.report.figures import paired_repetitions
from mecl_utils.statistics import ALPHA, PairedDifference, chance_caveat, difference_reading, passes, readable

__all__ = [
    "DISTILLATION_GROUPS",
    "distillation_pairs",
    "distillation_reading",
    "format_distillation_table",
    "style_distillation_table",
    "table_caveat",
]

DISTILLATION_GROUPS = ("plain vanilla", "plain curriculum", "distilled vanilla", "distilled curriculum")


def format_distillation_table(table: pd.DataFrame) -> pd.DataFrame:
    """``strategy_comparisons.distillation_table`` as strings: mean ± std per group, then curriculum's and
    distillation's differences in points with their 95 % intervals and p-values (distillation's
    Holm-corrected across the cases)."""
    out = []
    for _, row in table.iterrows():
        entry = {"Case": case_label(row)}
        for group in DISTILLATION_GROUPS:
            entry[group] = mean_std(row[f"{group} mean"], row[f"{group} std"])
        entry["curriculum, distilled"] = difference_cell(row, "curriculum {} (distilled)")
        entry["distillation, vanilla"] = difference_cell(row, "distillation {} (vanilla)", corrected=True)
        entry["repetitions"] = int(row["repetitions"])
        out.append(entry)
    return pd.DataFrame(out)


def distillation_pairs(rows: pd.DataFrame):
    """Test accuracy of plain and distilled branches per method, one grey line per repetition, per case."""
    reps = rows[
        rows["stage"].isin(["repetition", "distillation"]) & rows["method"].isin(["vanilla", "curriculum"])
    ]
    prefix = np.where(reps["stage"] == "distillation", "distilled ", "plain ")
    accuracies = repetition_accuracies(
        reps.assign(method=prefix + reps["method"]), methods=DISTILLATION_GROUPS
    )
    return paired_repetitions(accuracies, repetition_means(accuracies))


def style_distillation_table(table: pd.DataFrame):
    """``format_distillation_table`` for a page: a pandas Styler narrow enough for the text column.

    The case takes one cell (backbone, then data set, branch and repetitions in small type) and each std
    goes under its mean, so the table reads without scrolling sideways.
    """
    text = format_distillation_table(table).astype(str).map(html.escape)
    case = table["dataset"] + "&nbsp;·&nbsp;branch&nbsp;" + table["branch"].astype(int).astype(str)
    runs = table["repetitions"].astype(int).astype(str) + "&nbsp;repetitions"
    folded = pd.DataFrame({"Case": table["backbone"] + "<br><small>" + case + "<br>" + runs + "</small>"})
    for column in text.columns.drop(["Case", "repetitions"]):
        mean, plus_minus, std = text[column].str.partition(" ± ").T.to_numpy()
        folded[column] = np.where(plus_minus == "", mean, mean + "<br><small>±&nbsp;" + std + "</small>")
    compact = [
        {"selector": "td, th", "props": "font-size: 0.85em; padding: 0.2em 0.4em; text-align: left;"},
        {"selector": "td", "props": "vertical-align: top;"},
    ]
    return folded.style.hide(axis="index").set_table_styles(compact)


def distillation_reading(table: pd.DataFrame, alpha: float = ALPHA) -> str:
    """One paragraph per case: distillation's effect on vanilla branches, curriculum's with and without it,
    each difference with its interval; then the families and, where an uncorrected test passes, the caveat."""
    sentences = []
    for _, row in table.iterrows():
        distillation = PairedDifference.from_row(row, "distillation {} (vanilla)")
        corrected = row["distillation p adjusted (vanilla)"]
        with_ = PairedDifference.from_row(row, "curriculum {} (distilled)")
        without = PairedDifference.from_row(row, "curriculum {} (plain)")
        sentences.append(
            f"**{case_label(row)}**: distilled minus plain vanilla branches, "
            f"{difference_reading(distillation, corrected, alpha, corrected=True)}. Curriculum minus vanilla "
            f"among distilled branches, {difference_reading(with_, alpha=alpha)}. Among plain branches "
            f"(Table IV's comparison on these repetitions), {difference_reading(without, alpha=alpha)}."
        )
    if len(table):
        cases = f"{len(table)} case{'s' if len(table) != 1 else ''}"
        sentences.append(
            f"Distillation's p-values are Holm-corrected across the table's {cases}; curriculum's, with "
            "distillation (the comparison fixed in advance) and without, are read as they are. Each interval "
            "is its own comparison's, uncorrected."
        )
    caveat = table_caveat(table, ("curriculum p (distilled)", "curriculum p (plain)"), alpha)
    return "\n\n".join([*sentences, caveat] if caveat else sentences)


def table_caveat(table: pd.DataFrame, columns: tuple[str, ...], alpha: float) -> str:
    """``chance_caveat`` over the uncorrected p-values of ``columns`` that can be read (enough repetitions, no
    NaN); "" when none passes."""
    tests = [
        (float(p), int(n))
        for column in columns
        for p, n in zip(table[column], table["repetitions"], strict=True)
        if readable(p, n)
    ]
    passed = sum(passes(p, n, alpha) for p, n in tests)
    return chance_caveat(len(tests), passed, alpha) if passed else ""
