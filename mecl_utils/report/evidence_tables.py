"""The evidence tables: each case's difference from vanilla read several ways, and the answer over cases.

Table IV (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. IV) gives one row per case. ``case_evidence`` turns its
repetition rows into one row per (case, compared method): the paired difference with its t interval and a
bootstrap one, the p-value the book's rule reads (``statistics.compare_with_baseline``), a Holm correction
across every case of the same family (the primary comparison over cases; the secondaries over cases and
methods together), the probability of improvement, the power the test had for ``min_effect`` and the
repetitions it would need. ``pooled_evidence`` answers across cases: the random-effects pooled difference,
the sign count the paper's "all cases improve" resembles, the pooled probability of improvement, and the
repetitions that the pooled SD of the differences asks for. ``evidence_text`` writes either table as
Markdown or CSV for ``python -m mecl_utils stats``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from mecl_utils import evidence
from mecl_utils.protocol.results import CASE, METHOD_COLUMNS
from mecl_utils.protocol.runs import Case
from mecl_utils.report.figure_data import repetition_accuracies
from mecl_utils.report.readings import PROSE_NAMES
from mecl_utils.seeds import stream_seed
from mecl_utils.statistics import (
    ALPHA,
    CONFIDENCE,
    MIN_REPETITIONS,
    PRIMARY,
    SECONDARY,
    compare_with_baseline,
    holm,
    interval_text,
    p_phrase,
    paired_difference,
)

__all__ = [
    "DEFAULT_MIN_EFFECT",
    "case_evidence",
    "evidence_text",
    "forest_rows",
    "pooled_evidence",
    "pooled_sentence",
    "repetition_curve",
    "stats_table",
]

DEFAULT_MIN_EFFECT = 2.0  # points: the difference the book's power statements are for
_BOOTSTRAP_ROOT = 0  # the root of the analysis' own seeds (never a training seed)


def case_accuracies(results: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """Per case, its test accuracies in % as repetitions × methods (``figure_data.repetition_accuracies``)."""
    reps = results[results["stage"] == "repetition"]
    if reps.empty:
        raise ValueError("no repetition rows yet: run the protocol's final stage first")
    return [(dict(zip(CASE, key, strict=True)), table) for key, table in repetition_accuracies(reps).items()]


def _label(case: dict) -> str:
    return Case(*(case[key] for key in CASE)).label


def case_evidence(
    results: pd.DataFrame,
    min_effect: float = DEFAULT_MIN_EFFECT,
    alpha: float = ALPHA,
    power: float = evidence.POWER,
) -> pd.DataFrame:
    """One row per case and method compared with vanilla (differences in points of test accuracy)."""
    rows = []
    for case, accuracy in case_accuracies(results):
        if "vanilla" not in accuracy:
            continue
        compared = compare_with_baseline(accuracy)
        for method, test in compared.iterrows():
            pairs = accuracy[["vanilla", method]].dropna()
            differences = pairs[method] - pairs["vanilla"]
            seed = stream_seed(_BOOTSTRAP_ROOT, "bootstrap", _label(case), method)
            boot_low, boot_high = evidence.bootstrap_interval(differences, seed=seed)
            rows.append(
                {
                    **case,
                    "method": method,
                    "role": test["role"],
                    "pairs": int(test["n"]),
                    "difference": test["mean"],
                    "sd": test["sd"],
                    "low": test["low"],
                    "high": test["high"],
                    "bootstrap low": boot_low,
                    "bootstrap high": boot_high,
                    "p": test["p"],
                    "p rule": test["p adjusted"],
                    "P(improve)": evidence.probability_of_improvement(pairs["vanilla"], pairs[method]),
                    "power": evidence.paired_power(min_effect, test["sd"], int(test["n"]), alpha),
                    "repetitions needed": _needed(min_effect, test["sd"], alpha, power),
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError("no case has vanilla runs to compare with")
    table = table.astype({"repetitions needed": "Int64"})
    table["p Holm (cases)"] = np.nan
    for family in ((PRIMARY,), SECONDARY):
        members = table["method"].isin(family)
        table.loc[members, "p Holm (cases)"] = holm(table.loc[members, "p"])
    return table


def _needed(min_effect: float, sd: float, alpha: float, power: float) -> int | None:
    """The repetitions for power, at least the ``MIN_REPETITIONS`` the book's rule reads a test with; None
    where the SD is missing or the count beyond any reach."""
    if not sd > 0:
        return None
    try:
        return max(MIN_REPETITIONS, evidence.repetitions_for_power(min_effect, sd, alpha, power))
    except ValueError:
        return None


def pooled_evidence(
    results: pd.DataFrame,
    min_effect: float = DEFAULT_MIN_EFFECT,
    alpha: float = ALPHA,
    power: float = evidence.POWER,
    per_case: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per method compared with vanilla, pooled over every case of ``results``.

    The pooled SD of the differences is the root mean square of the cases' SDs; the repetitions it asks
    for are those of one case's paired test at ``min_effect``. The secondaries' pooled p-values are
    Holm-corrected across the two, as in every case. ``per_case``: ``case_evidence`` of the same arguments,
    where the caller holds it already.
    """
    if per_case is None:
        per_case = case_evidence(results, min_effect, alpha, power)
    accuracies = case_accuracies(results)
    rows = []
    for method, group in per_case.groupby("method", sort=False):
        pooled = evidence.random_effects(group["difference"], group["sd"], group["pairs"])
        signs = evidence.sign_test(group["difference"])
        both = [a[["vanilla", method]].dropna() for _, a in accuracies if "vanilla" in a and method in a]
        pairs = [(pair["vanilla"], pair[method]) for pair in both]
        improvement = evidence.pooled_probability_of_improvement(
            pairs, seed=stream_seed(_BOOTSTRAP_ROOT, "bootstrap", "pooled", method)
        )
        sd = float(np.sqrt(np.nanmean(group["sd"] ** 2))) if group["sd"].notna().any() else math.nan
        rows.append(
            {
                "method": method,
                "role": group["role"].iloc[0],
                "cases": len(group),
                "difference": pooled.mean,
                "low": pooled.low,
                "high": pooled.high,
                "p": pooled.p,
                "tau": pooled.tau,
                "I2": pooled.i2,
                "cases pooled": pooled.k,
                "common difference": pooled.common_mean,
                "common low": pooled.common_low,
                "common high": pooled.common_high,
                "common p": pooled.common_p,
                "improved": signs.improved,
                "worse": signs.worse,
                "ties": signs.ties,
                "sign p": signs.p,
                "P(improve)": improvement.value,
                "P low": improvement.low,
                "P high": improvement.high,
                "pooled sd": sd,
                "repetitions needed": _needed(min_effect, sd, alpha, power),
            }
        )
    table = pd.DataFrame(rows).astype({"repetitions needed": "Int64"})
    table["p rule"] = table["p"]
    secondary = table["role"] == "secondary"
    table.loc[secondary, "p rule"] = holm(table.loc[secondary, "p"])
    table["passes"] = (table["cases pooled"] >= 2) & (table["p rule"] < alpha)
    return table


def repetition_curve(
    results: pd.DataFrame, counts: list[int], method: str = PRIMARY, confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """How one comparison's interval narrows with the repetitions, per case.

    For each count in ``counts``: up to the repetitions stored, the t interval of the first that many
    (``observed``); beyond, the interval the stored SD of the differences predicts around the stored mean
    (t on count − 1 degrees of freedom, SD / √count), which assumes that SD is right. ``cpu minutes``: the
    count times the methods' median seconds a repetition run took, summed over the four methods.
    """
    rows = []
    reps = results[results["stage"] == "repetition"]
    for case, accuracy in case_accuracies(results):
        if "vanilla" not in accuracy or method not in accuracy:
            continue
        accuracy = accuracy[["vanilla", method]].dropna()  # the repetitions both methods have
        stored = len(accuracy)
        full = paired_difference(accuracy["vanilla"], accuracy[method], confidence)
        keep = (reps[CASE] == pd.Series(case)).all(axis=1)
        run_seconds = reps.loc[keep].groupby("method")["seconds"].median().sum()
        for count in counts:
            if count <= stored:
                first = accuracy.loc[accuracy.index[:count]]
                difference = paired_difference(first["vanilla"], first[method], confidence)
                mean, low, high = difference.mean, difference.low, difference.high
            else:
                mean = full.mean
                half = stats.t.ppf(0.5 + confidence / 2, count - 1) * full.sd / math.sqrt(count)
                low, high = mean - half, mean + half
            rows.append(
                {
                    "case": _label(case),
                    "repetitions": count,
                    "observed": count <= stored,
                    "difference": mean,
                    "low": low,
                    "high": high,
                    "half width": (high - low) / 2,
                    "cpu minutes": count * run_seconds / 60,
                }
            )
    return pd.DataFrame(rows)


def forest_rows(per_case: pd.DataFrame, pooled: pd.DataFrame, method: str = PRIMARY) -> pd.DataFrame:
    """What ``figures.forest`` draws for ``method``: each case's t interval, then the random-effects pooled
    one and the common-effect one."""
    cases = per_case[per_case["method"] == method]
    total = pooled[pooled["method"] == method].iloc[0]
    rows = [
        {"label": _label(row), **row[["difference", "low", "high"]], "pooled": False}
        for _, row in cases.iterrows()
    ]
    rows.append({"label": "pooled (random effects)", **total[["difference", "low", "high"]], "pooled": True})
    common = total[["common difference", "common low", "common high"]].to_numpy()
    rows.append(
        {
            "label": "common effect",
            **dict(zip(["difference", "low", "high"], common, strict=True)),
            "pooled": True,
        }
    )
    return pd.DataFrame(rows)


def pooled_sentence(row: pd.Series, alpha: float = ALPHA, unit: str = "points") -> str:
    """What one ``pooled_evidence`` row lets a reader say, as a sentence (MyST Markdown)."""
    name = PROSE_NAMES[METHOD_COLUMNS[row["method"]]]
    cases = int(row["cases pooled"])
    head = f"Pooled over {cases} case{'' if cases == 1 else 's'}, {name} minus vanilla is"
    if cases < 2 or pd.isna(row["difference"]):
        return f"{head} not estimable: fewer than two cases have a spread to weigh them by."
    interval = interval_text(row["low"], row["high"], unit)
    corrected = "Holm-corrected p" if row["role"] == "secondary" else "p"
    p = f"{corrected} {p_phrase(row['p rule'])}"
    verdict = (
        f"distinguishable from noise at the {alpha:g} level ({p})"
        if row["p rule"] < alpha
        else f"not distinguishable from noise over these cases ({p})"
    )
    return (
        f"{head} {row['difference']:+.2f} {unit}, {verdict}. The {CONFIDENCE * 100:.0f} % interval "
        f"{interval} holds the pooled differences the runs leave plausible: a true pooled difference "
        f"above {row['high']:+.2f} {unit} or below {row['low']:+.2f} {unit} is unlikely. The spread between "
        f"cases (tau) is {row['tau']:.2f} {unit}; {int(row['improved'])} of {cases} cases have the method "
        f"ahead. Assuming one common difference for every case instead (a sensitivity reading, narrower, and "
        f"right only if the cases do not differ), it is {row['common difference']:+.2f} {unit}, "
        f"{CONFIDENCE * 100:.0f} % interval {interval_text(row['common low'], row['common high'], unit)}."
    )


def stats_table(per_case: pd.DataFrame, pooled: pd.DataFrame) -> pd.DataFrame:
    """Both tables as one, for CSV: ``level`` 'case' or 'pooled'; the pooled rows' case is 'all cases'."""
    pooled = pooled.assign(level="pooled", backbone="all cases")
    both = pd.concat([per_case.assign(level="case"), pooled]).astype({"branch": "Int64", "pairs": "Int64"})
    first = ["level", *per_case.columns]
    return both[first + [column for column in pooled.columns if column not in first]].reset_index(drop=True)


def evidence_text(table: pd.DataFrame, form: str = "markdown", digits: int = 3) -> str:
    """``table`` as Markdown (numbers rounded to ``digits``) or as CSV (full precision)."""
    if form == "csv":
        return table.to_csv(index=False)
    if form != "markdown":
        raise ValueError(f"unknown format {form!r}: choose 'markdown' or 'csv'")
    rounded = table.round(digits).astype(object).where(table.notna(), "–")
    lines = [
        list(map(str, rounded.columns)),
        *(list(map(str, row)) for row in rounded.itertuples(index=False)),
    ]
    header, *body = ("| " + " | ".join(cells) + " |" for cells in lines)
    rule = "|" + "|".join("---" for _ in rounded.columns) + "|"
    return "\n".join([header, rule, *body]) + "\n"
