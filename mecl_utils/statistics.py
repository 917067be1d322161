"""Paired comparisons over repetitions: the one home of the book's statistics and its significance rule.

Bakhtiarnia, Zhang & Iosifidis (2021, Sec. IV) give the four training methods of one repetition identical
branch initialisations, so a method is compared with vanilla through the per-repetition differences
(method − vanilla): their mean, a 95 % t confidence interval, and a paired t-test. The paper reports
mean ± std and no test; this module is what every reading of the book (Table IV, the early-exit AUCs, the
strategy tables, the verdict sentences) uses instead of a test of its own. It depends on nothing else of
the package, so the layers that compute the comparisons (``strategies.network_runs``, ``exits.accuracy_cost``)
and those that read them (``report``) import the same rule.

The comparisons are fixed before any result is seen (``PRIMARY``, ``SECONDARY``): curriculum against
vanilla is the primary one and is read at ``ALPHA`` as it is; anti-curriculum and random curriculum against
vanilla are secondary and their p-values are Holm-corrected across the secondary comparisons present. No
comparison is chosen after looking at the means. A test passes (``passes``) when it has at least
``MIN_REPETITIONS`` pairs and its (corrected) p-value is below ``ALPHA``; a test that does not pass says the
difference is *not distinguishable* with that many repetitions, and its interval says which differences
remain possible (``reading``). It never says there is no difference. Where several uncorrected tests are
read side by side, ``chance_caveat`` says how many would pass by chance alone.

Where only published means and standard deviations exist (the paper's own table), no pairing is possible:
``welch_difference`` gives the unpaired (Welch) difference, its interval and p-value from those summaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "MIN_REPETITIONS",
    "PRIMARY",
    "SECONDARY",
    "PairedDifference",
    "chance_caveat",
    "compare_with_baseline",
    "difference_reading",
    "holm",
    "interval_text",
    "p_phrase",
    "paired_difference",
    "passes",
    "readable",
    "reading",
    "welch_difference",
]

ALPHA = 0.05  # a (corrected) p-value below this passes
MIN_REPETITIONS = 3  # with fewer pairs a paired t-test (one degree of freedom or none) is not read at all
CONFIDENCE = 0.95  # of every interval the book prints
PRIMARY = "curriculum"  # against vanilla: the paper's claim, read uncorrected
SECONDARY = ("anti", "random")  # against vanilla: Holm-corrected across those present
_ZERO_SD = 1e-8  # differences whose SD is below this do not vary: the t statistic is undefined


@dataclass(frozen=True)
class PairedDifference:
    """``other − baseline`` over paired repetitions, in the inputs' unit (points for accuracies in %)."""

    n: int  # pairs with both values
    mean: float
    sd: float  # of the differences (NaN below two pairs)
    low: float  # the CONFIDENCE t interval of the mean difference (NaN below two pairs)
    high: float
    p: float  # two-sided paired t-test (NaN below two pairs, or when the differences do not vary)

    @classmethod
    def from_row(cls, row: pd.Series, template: str, mean: str | None = None) -> PairedDifference:
        """The paired difference a table row holds in the columns ``template`` names.

        ``template.format(field)`` names each column: 'Curriculum {}' reads 'Curriculum difference',
        'Curriculum low', 'Curriculum high', 'Curriculum pairs' and 'Curriculum p'; ``mean`` names the mean's
        column where it is not ``template.format('difference')``. Without a pairs column the row's
        ``repetitions`` count the pairs. Tables keep no SD of the differences: ``sd`` is NaN.
        """
        return cls(
            n=int(row.get(template.format("pairs"), row.get("repetitions"))),
            mean=float(row[mean or template.format("difference")]),
            sd=math.nan,
            low=float(row[template.format("low")]),
            high=float(row[template.format("high")]),
            p=float(row[template.format("p")]),
        )


def paired_difference(
    baseline: pd.Series, other: pd.Series, confidence: float = CONFIDENCE
) -> PairedDifference:
    """The paired difference ``other − baseline``, pairs matched by index (the repetition); NaNs dropped."""
    pairs = pd.concat([pd.Series(baseline), pd.Series(other)], axis=1).dropna()
    differences = (pairs.iloc[:, 1] - pairs.iloc[:, 0]).to_numpy(dtype=float)
    n = len(differences)
    if n == 0:
        return PairedDifference(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(differences.mean())
    if n < 2:
        return PairedDifference(n, mean, math.nan, math.nan, math.nan, math.nan)
    sd = float(differences.std(ddof=1))
    if sd < _ZERO_SD:
        return PairedDifference(n, mean, sd, mean, mean, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    p = float(stats.ttest_1samp(differences, 0.0).pvalue)
    return PairedDifference(n, mean, sd, mean - half, mean + half, p)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error at any level); NaNs stay NaN and do not count."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def readable(p: float, n: int) -> bool:
    """Whether the rule reads a test at all: at least ``MIN_REPETITIONS`` pairs and a p-value."""
    return n >= MIN_REPETITIONS and not pd.isna(p)


def passes(p: float, n: int, alpha: float = ALPHA) -> bool:
    """The book's significance rule: at least ``MIN_REPETITIONS`` pairs and a p-value below ``alpha``."""
    return readable(p, n) and p < alpha


def chance_caveat(tests: int, passed: int, alpha: float) -> str:
    """What ``passed`` of ``tests`` paired tests below ``alpha`` are worth when nothing is there at all."""
    if tests == 1:
        return (
            f"This one test falls below {alpha:g}; with no effect at all it would do so with probability "
            f"{alpha:g}. Read it as a lead to re-test with more repetitions, not as a finding."
        )
    verb = "falls" if passed == 1 else "fall"
    return (
        f"{passed} of these {tests} tests {verb} below {alpha:g}; with no effect anywhere, {tests} tests at "
        f"that level would do so about {tests * alpha:.1f} times by chance alone. Read them as leads to "
        "re-test with more repetitions, not as findings."
    )


def compare_with_baseline(
    wide: pd.DataFrame, baseline: str = "vanilla", confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """Every method column of ``wide`` (rows: repetitions) against ``baseline``, as fixed in advance.

    One row per compared method: ``role`` (primary or secondary), the ``PairedDifference`` fields, the
    p-value the rule reads (``p adjusted``: the primary's own, the secondaries' Holm-corrected across the
    secondary methods present), and ``passes``. Methods other than ``PRIMARY`` and ``SECONDARY`` are left out.
    """
    if baseline not in wide:
        raise ValueError(f"no {baseline!r} column to compare with; columns: {', '.join(map(str, wide))}")
    rows = []
    for method in (PRIMARY, *SECONDARY):
        if method in wide:
            difference = paired_difference(wide[baseline], wide[method], confidence)
            role = "primary" if method == PRIMARY else "secondary"
            rows.append({"method": method, "role": role, **difference.__dict__})
    frame = pd.DataFrame(rows, columns=["method", "role", *PairedDifference.__dataclass_fields__])
    frame["p adjusted"] = frame["p"]
    secondary = frame["role"] == "secondary"
    frame.loc[secondary, "p adjusted"] = holm(frame.loc[secondary, "p"])
    frame["passes"] = [passes(p, n) for p, n in zip(frame["p adjusted"], frame["n"], strict=True)]
    return frame.set_index("method")


def welch_difference(
    mean: np.ndarray,
    sd: np.ndarray,
    n: np.ndarray,
    baseline_mean: np.ndarray,
    baseline_sd: np.ndarray,
    baseline_n: np.ndarray,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """``mean − baseline_mean`` from summaries alone (one row per element): Welch's unpaired t interval and
    two-sided p-value, columns ``mean``, ``low``, ``high``, ``p``. Unpaired, so wider than a paired test of
    the same runs would be whenever the runs of one repetition move together."""
    mean, sd, n = (np.asarray(x, dtype=float) for x in (mean, sd, n))
    baseline_mean, baseline_sd, baseline_n = (
        np.asarray(x, dtype=float) for x in (baseline_mean, baseline_sd, baseline_n)
    )
    a, b = sd**2 / n, baseline_sd**2 / baseline_n
    se = np.sqrt(a + b)
    df = (a + b) ** 2 / (a**2 / (n - 1) + b**2 / (baseline_n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    difference = mean - baseline_mean
    welch = stats.ttest_ind_from_stats(mean, sd, n, baseline_mean, baseline_sd, baseline_n, equal_var=False)
    p = welch.pvalue
    return pd.DataFrame({"mean": difference, "low": difference - half, "high": difference + half, "p": p})


def interval_text(low: float, high: float, unit: str = "points", digits: int = 2) -> str:
    """'[-0.41, +2.30] points'; '–' when the interval is missing."""
    if pd.isna(low) or pd.isna(high):
        return "–"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}] {unit}"


def reading(
    difference: PairedDifference,
    p: float | None = None,
    alpha: float = ALPHA,
    unit: str = "points",
    corrected: bool = False,
) -> str:
    """What one paired comparison allows a reader to say, as a phrase (no leading capital, no full stop).

    ``p`` is the p-value the rule reads (a corrected one for a secondary comparison; ``corrected`` says so);
    by default the difference's own. The interval is given whenever there is one, even where too few
    repetitions leave the test unread (then differences that do not vary are said to be equal instead of
    given a zero-width interval).
    """
    p = difference.p if p is None else p
    interval = interval_text(difference.low, difference.high, unit)
    if difference.n < MIN_REPETITIONS:
        too_few = (
            f"with {difference.n} repetition{'s' if difference.n != 1 else ''} a paired test cannot be read "
            f"(at least {MIN_REPETITIONS} are needed)"
        )
        if interval == "–":
            return too_few
        if difference.low == difference.high:  # the differences do not vary: a zero-width interval
            return f"{too_few}; the {difference.n} differences are all {difference.mean:+.2f} {unit}"
        return f"{too_few}; the interval is {interval}"
    label = "Holm-corrected p" if corrected else "p"
    p_text = "undefined: the differences do not vary" if pd.isna(p) else p_phrase(p)
    if passes(p, difference.n, alpha):
        return (
            f"distinguishable from noise at the {alpha:g} level ({label} {p_text}; "
            f"{CONFIDENCE * 100:.0f} % interval {interval})"
        )
    return (
        f"not distinguishable with {difference.n} repetitions ({label} {p_text}); the interval is {interval}"
    )


def p_phrase(p: float) -> str:
    """'< 0.001' or '= 0.123': a p-value as the book writes it."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def difference_reading(
    difference: PairedDifference,
    p: float | None = None,
    alpha: float = ALPHA,
    unit: str = "points",
    corrected: bool = False,
) -> str:
    """The mean difference, then its ``reading``: '+1.23 points, not distinguishable with 3 ...'."""
    text = reading(difference, p, alpha, unit, corrected)
    return text if pd.isna(difference.mean) else f"{difference.mean:+.2f} {unit}, {text}"
