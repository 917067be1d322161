"""The paper's Table IV re-read: what its published mean ± std over 5 repetitions can and cannot say.

Bakhtiarnia, Zhang & Iosifidis (2021, Sec. IV) report, per case, each method's mean and standard deviation
of test accuracy over 5 repetitions, and count the cases where curriculum *or* anti-curriculum beats vanilla.
Summaries allow no pairing, so each case is read with Welch's unpaired test (``statistics.welch_difference``):
the comparison fixed in advance (curriculum against vanilla) and the one the paper's count makes (the better
mean of curriculum and anti-curriculum, picked after looking), each Holm-corrected over the 16 cases; the
smallest difference 5 runs against 5 could detect given the published spread (``evidence``); and the cases
pooled by the random-effects meta-analysis our own runs get (``paper_pooled``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mecl_utils import evidence
from mecl_utils.protocol.results import CASE
from mecl_utils.statistics import ALPHA, holm, welch_difference

__all__ = ["paper_evidence", "paper_pooled"]


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
