"""The plain reading of Table IV (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. IV), case by case.

``case_verdict`` reads one row of ``table_iv.table_iv``: its comparisons with vanilla in the order fixed in
advance by ``statistics`` (curriculum first, then anti and random, Holm-corrected), each with its difference,
95 % interval, p-value and what the book's rule allows a reader to say; ``verdict_sentence`` writes that as
sentences for a page. A comparison that does not pass reads "not distinguishable", never "no effect".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mecl_utils.protocol.results import METHOD_COLUMNS
from mecl_utils.report.cells import case_label
from mecl_utils.statistics import ALPHA, PRIMARY, SECONDARY, PairedDifference, passes, reading

__all__ = ["case_verdict", "verdict_sentence"]

PROSE_NAMES = {
    "Vanilla": "vanilla",
    "Curriculum": "curriculum",
    "Anti": "anti-curriculum",
    "Random": "random curriculum",
}


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
        difference = PairedDifference.from_row(row, f"{label} {{}}")
        p, secondary = difference.p, method in SECONDARY
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
    case = f"**{case_label(row)}**"
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
