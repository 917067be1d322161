"""When and by which difficulty: curriculum against vanilla and against random, per condition and score.

Wu, Dyer & Neyshabur (2021) ask of curricula what the paper did not: whether the *ordering* helps, or only
the pacing (random curriculum has the same pacing on a shuffled order), and under which training conditions.
The comparisons are fixed before the runs: per case, condition (``protocol.conditions``) and measure of
difficulty (the teacher Table IV chose, and every score of ``curriculum.difficulty.SCORES`` the profile
names),

- curriculum − vanilla: does the curriculum help at all?
- curriculum − random: does its ordering help beyond its pacing?

each paired over repetitions (shared initial weights) with its 95 % t interval, and the p-values
Holm-corrected across the whole family the chapter reads (every case × condition × measure × both
comparisons). Pooled over cases: the random-effects estimate of ``evidence.random_effects``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mecl_utils import evidence
from mecl_utils.protocol.runs import RunSpec
from mecl_utils.report.evidence_tables import DEFAULT_MIN_EFFECT
from mecl_utils.statistics import (
    ALPHA,
    PairedDifference,
    holm,
    interval_text,
    paired_difference,
    passes,
    reading,
)

__all__ = [
    "COMPARISONS",
    "condition_comparisons",
    "condition_rows",
    "condition_sentence",
    "ordering_summary",
    "pooled_conditions",
]

COMPARISONS = {"curriculum − vanilla": "vanilla", "curriculum − random": "random"}  # label: baseline


def condition_rows(runs: list[tuple[RunSpec, str]], results: pd.DataFrame) -> pd.DataFrame:
    """One row per (spec, run_id) of ``runs`` that ``results`` holds: its case, condition, method, measure of
    difficulty (``teacher``: "" for vanilla and random), repetition and test accuracy in %."""
    accuracy = results.drop_duplicates("run_id").set_index("run_id")["accuracy"]
    rows = [
        {
            "case": spec.case.label,
            "condition": spec.condition.label,
            "method": spec.method,
            "teacher": spec.teacher or "",
            "repetition": spec.repetition,
            "accuracy": 100 * float(accuracy[run_id]),
        }
        for spec, run_id in runs
        if run_id in accuracy.index
    ]
    return pd.DataFrame(rows, columns=["case", "condition", "method", "teacher", "repetition", "accuracy"])


def condition_comparisons(
    rows: pd.DataFrame, min_effect: float = DEFAULT_MIN_EFFECT, alpha: float = ALPHA
) -> pd.DataFrame:
    """Both comparisons per case, condition and measure of difficulty (module docstring).

    Columns: case, condition, teacher, comparison, pairs, difference, sd, low, high, p, ``p Holm`` over
    every row (the chapter's family), and ``power``: the paired t-test's power for a true difference of
    ``min_effect`` points at the uncorrected level ``alpha``, from the observed SD (NaN below two pairs).
    Conditions keep their order in ``rows``.
    """
    found = []
    for (case, condition), group in rows.groupby(["case", "condition"], sort=False):
        by_method = {
            method: part.set_index("repetition")["accuracy"]
            for method, part in group[group["teacher"] == ""].groupby("method")
        }
        curricula = group[group["method"] == "curriculum"]
        for teacher, part in curricula.groupby("teacher", sort=False):
            curriculum = part.set_index("repetition")["accuracy"]
            for label, baseline in COMPARISONS.items():
                if baseline not in by_method:
                    continue
                difference = paired_difference(by_method[baseline], curriculum)
                found.append(
                    {"case": case, "condition": condition, "teacher": teacher, "comparison": label,
                     "pairs": difference.n, "difference": difference.mean, "sd": difference.sd,
                     "low": difference.low, "high": difference.high, "p": difference.p}
                )  # fmt: skip
    table = pd.DataFrame(
        found,
        columns=[
            "case",
            "condition",
            "teacher",
            "comparison",
            "pairs",
            "difference",
            "sd",
            "low",
            "high",
            "p",
        ],
    )
    table["p Holm"] = holm(table["p"]) if len(table) else []
    table["power"] = [
        evidence.paired_power(min_effect, sd, int(n), alpha) if n >= 2 else np.nan
        for sd, n in zip(table["sd"], table["pairs"], strict=True)
    ]
    return table


def pooled_conditions(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Per condition, measure and comparison, the cases pooled by random effects (one case: its own row)."""
    found = []
    for (condition, teacher, label), group in comparisons.groupby(
        ["condition", "teacher", "comparison"], sort=False
    ):
        pooled = evidence.random_effects(group["difference"], group["sd"], group["pairs"])
        found.append(
            {"condition": condition, "teacher": teacher, "comparison": label, "cases": len(group),
             "difference": pooled.mean, "low": pooled.low, "high": pooled.high, "p": pooled.p,
             "tau": pooled.tau}
        )  # fmt: skip
    return pd.DataFrame(found)


def condition_sentence(row: pd.Series, alpha: float = ALPHA) -> str:
    """One comparison row in the book's wording: the difference, then what it allows a reader to say."""
    paired = PairedDifference(
        int(row["pairs"]), row["difference"], row["sd"], row["low"], row["high"], row["p"]
    )
    mean = "–" if np.isnan(row["difference"]) else f"{row['difference']:+.2f} points"
    return (
        f"{row['case']}, {row['condition']}, ordered by {row['teacher']}: {row['comparison']} is {mean}, "
        f"{reading(paired, row['p Holm'], alpha, corrected=True)}."
    )


def ordering_summary(comparisons: pd.DataFrame, alpha: float = ALPHA) -> str:
    """Where the order helped beyond its pacing (curriculum − random passing after Holm), where it did not,
    and the differences the other intervals still allow; never "no effect"."""
    rows = comparisons[comparisons["comparison"] == "curriculum − random"]
    if rows.empty:
        return "No curriculum − random comparison was run."
    passed = rows[[passes(p, n, alpha) for p, n in zip(rows["p Holm"], rows["pairs"], strict=True)]]
    rest = rows.drop(passed.index)
    parts = []
    if len(passed):
        where = "; ".join(
            f"{row['condition']}, ordered by {row['teacher']} ({row['difference']:+.2f} points, "
            f"{interval_text(row['low'], row['high'])})"
            for _, row in passed.iterrows()
        )
        parts.append(
            f"The order helped beyond its pacing, after Holm's correction at the {alpha:g} level, in: "
            f"{where}."
        )
    if len(rest):
        verdict = (
            "elsewhere the order's effect is not distinguishable"
            if len(passed)
            else f"in none of the {len(rest)} settings is the order's effect distinguishable"
        )
        parts.append(
            f"{verdict[0].upper()}{verdict[1:]} from the seeds with {int(rest['pairs'].min())} repetitions; "
            f"those intervals still allow differences from {rest['low'].min():+.2f} to "
            f"{rest['high'].max():+.2f} points, so they neither show an effect of the order nor rule out one "
            "of that size."
        )
    return " ".join(parts)
