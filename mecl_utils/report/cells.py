"""How a number reads in a table cell or a sentence: mean ± std, a difference with its interval, a p-value.

Every table of the book (Table IV, the distillation and strategy tables of the paper's Sec. V questions) and
the sentences beside them write their numbers through these few functions, so a difference never appears
without its 95 % interval (``statistics.interval_text``) and a p-value always reads the same way.
"""

from __future__ import annotations

import pandas as pd

from mecl_utils.statistics import PairedDifference, interval_text

__all__ = ["case_label", "difference_cell", "difference_text", "mean_std", "p_text", "with_interval"]


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


def difference_text(difference: float, low: float, high: float) -> str:
    """'+1.23 [+0.50, +1.96]': a difference in points and its interval; '–' when there is none."""
    if difference is None or pd.isna(difference):
        return "–"
    interval = interval_text(low, high, unit="").strip()
    return f"{difference:+.2f}" if interval == "–" else f"{difference:+.2f} {interval}"


def with_interval(difference: PairedDifference, unit: str = "points") -> str:
    """'+1.23 [-0.50, +2.96] points': the mean difference and its interval (where there is one)."""
    text = difference_text(difference.mean, difference.low, difference.high)
    return f"{text} {unit}" if unit else text


def difference_cell(row: pd.Series, template: str, mean: str | None = None, corrected: bool = False) -> str:
    """'+1.23 [-0.50, +2.96], p 0.120' from a table row's columns (``PairedDifference.from_row``), with the
    Holm p ('p adjusted' column) where ``corrected``; '–' when there is no difference."""
    difference = PairedDifference.from_row(row, template, mean)
    if pd.isna(difference.mean):
        return "–"
    text = with_interval(difference, unit="")
    p = row[template.format("p adjusted")] if corrected else difference.p
    return text if pd.isna(p) else f"{text}, {'Holm p' if corrected else 'p'} {p_text(p)}"


def case_label(row: pd.Series) -> str:
    """'mobilenet / cifar10 / branch 1': the case a table row is about."""
    return f"{row['backbone']} / {row['dataset']} / branch {int(row['branch'])}"
