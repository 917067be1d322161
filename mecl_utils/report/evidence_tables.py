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

from mecl_utils import evidence
from mecl_utils.protocol.results import CASE, require_one_configuration
from mecl_utils.seeds import stream_seed
from mecl_utils.statistics import (
    ALPHA,
    PRIMARY,
    SECONDARY,
    compare_with_baseline,
    holm,
    welch_difference,
)

__all__ = [
    "DEFAULT_MIN_EFFECT",
    "case_evidence",
    "evidence_text",
    "paper_evidence",
    "paper_pooled",
    "pooled_evidence",
    "stats_table",
]

DEFAULT_MIN_EFFECT = 2.0  # points: the difference the book's power statements are for
_BOOTSTRAP_ROOT = 0  # the root of the analysis' own seeds (never a training seed)


def case_accuracies(results: pd.DataFrame) -> list[tuple[dict, pd.DataFrame]]:
    """Per case, its test accuracies in % as repetitions × methods, from the ``repetition`` rows."""
    reps = results[results["stage"] == "repetition"]
    if reps.empty:
        raise ValueError("no repetition rows yet: run the protocol's final stage first")
    require_one_configuration(reps)
    return [
        (dict(zip(CASE, case, strict=True)), group.pivot_table("accuracy", "repetition", "method") * 100)
        for case, group in reps.groupby(CASE, sort=False)
    ]


def _label(case: dict) -> str:
    return f"{case['backbone']}/{case['dataset']}/branch {case['branch']}"


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
    """The repetitions for power; None where the SD is missing or the count beyond any reach."""
    if not sd > 0:
        return None
    try:
        return evidence.repetitions_for_power(min_effect, sd, alpha, power)
    except ValueError:
        return None


def pooled_evidence(
    results: pd.DataFrame,
    min_effect: float = DEFAULT_MIN_EFFECT,
    alpha: float = ALPHA,
    power: float = evidence.POWER,
) -> pd.DataFrame:
    """One row per method compared with vanilla, pooled over every case of ``results``.

    The pooled SD of the differences is the root mean square of the cases' SDs; the repetitions it asks
    for are those of one case's paired test at ``min_effect``. The secondaries' pooled p-values are
    Holm-corrected across the two, as in every case.
    """
    per_case = case_evidence(results, min_effect, alpha, power)
    accuracies = case_accuracies(results)
    rows = []
    for method, group in per_case.groupby("method", sort=False):
        pooled = evidence.random_effects(group["difference"], group["sd"], group["pairs"])
        signs = evidence.sign_test(group["difference"])
        pairs = [
            (a[["vanilla", method]].dropna()["vanilla"], a[["vanilla", method]].dropna()[method])
            for _, a in accuracies
            if "vanilla" in a and method in a
        ]
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


def paper_evidence(paper: pd.DataFrame, alpha: float = ALPHA, power: float = evidence.POWER) -> pd.DataFrame:
    """The paper's Table IV (``table_iv.paper_table_iv``: published mean ± std, 5 repetitions) read per case.

    No pairing is possible from summaries, so each difference is Welch's (``statistics.welch_difference``).
    Columns: curriculum − vanilla (``difference``, ``low``, ``high``, ``p``) and its p Holm-corrected over
    every case (``p Holm``); the better of curriculum and anti-curriculum by mean (``picked``), the way the
    paper counts its cases, with the same columns prefixed ``picked``; and the smallest difference a
    two-sample test of 5 against 5 runs would detect at ``power`` given the two methods' spread
    (``detectable``, from the root mean square of their SDs).
    """
    n = paper["repetitions"].to_numpy(dtype=float)
    vanilla = paper["Vanilla mean"].to_numpy(), paper["Vanilla std"].to_numpy()
    fixed = welch_difference(paper["Curriculum mean"], paper["Curriculum std"], n, *vanilla, n)
    anti_ahead = (paper["Anti mean"] > paper["Curriculum mean"]).to_numpy()
    picked_mean = np.where(anti_ahead, paper["Anti mean"], paper["Curriculum mean"])
    picked_std = np.where(anti_ahead, paper["Anti std"], paper["Curriculum std"])
    picked = welch_difference(picked_mean, picked_std, n, *vanilla, n)
    spread = np.sqrt((paper["Curriculum std"] ** 2 + paper["Vanilla std"] ** 2) / 2)
    return pd.DataFrame(
        {
            **{key: paper[key] for key in CASE},
            "difference": fixed["mean"],
            "low": fixed["low"],
            "high": fixed["high"],
            "p": fixed["p"],
            "p Holm": holm(fixed["p"]),
            "picked": np.where(anti_ahead, "anti", "curriculum"),
            "picked difference": picked["mean"],
            "picked low": picked["low"],
            "picked high": picked["high"],
            "picked p": picked["p"],
            "picked p Holm": holm(picked["p"]),
            "detectable": [
                evidence.detectable_difference(sd, int(k), alpha, power, paired=False)
                for sd, k in zip(spread, n, strict=True)
            ],
        }
    )


def paper_pooled(paper: pd.DataFrame) -> evidence.Pooled:
    """The paper's curriculum − vanilla pooled over its cases: each case's Welch difference, with variance
    (s_c² + s_v²) / 5, in the random-effects meta-analysis our own cases get."""
    spread = np.sqrt(paper["Curriculum std"] ** 2 + paper["Vanilla std"] ** 2)
    difference = paper["Curriculum mean"] - paper["Vanilla mean"]
    return evidence.random_effects(difference, spread, paper["repetitions"])


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
