"""The answers to the paper's two Sec. V questions, as far as the strategy experiments can give them.

Does curriculum learning combine with distillation (``distillation_tables``), and does it help end-to-end
or layer-wise training (``strategy_tables``)? ``open_questions_reading`` writes one paragraph each from the
two tables: how many comparisons there are, how many pass the rule of ``statistics`` (after the corrections
fixed in advance), every difference with its 95 % interval, and what too few repetitions leave open.
"""

from __future__ import annotations

import pandas as pd

from mecl_utils.report.cells import case_label, with_interval
from mecl_utils.report.distillation_tables import table_caveat
from mecl_utils.report.strategy_tables import STRATEGY_NAMES, exit_names, tested_exits
from mecl_utils.statistics import ALPHA, CONFIDENCE, MIN_REPETITIONS, PairedDifference, passes

__all__ = ["open_questions_reading"]


def open_questions_reading(distilled: pd.DataFrame, strategies: pd.DataFrame, alpha: float = ALPHA) -> str:
    """The two paragraphs that answer the paper's Sec. V questions as far as these runs can."""
    n_cases = len(distilled)
    reps = int(distilled["repetitions"].min()) if n_cases else 0
    gains = [
        (case_label(row), PairedDifference.from_row(row, "curriculum {} (distilled)"))
        for _, row in distilled.iterrows()
    ]
    ahead = sum(d.mean > 0 for _, d in gains)
    helped = sum(d.mean > 0 and passes(d.p, d.n, alpha) for _, d in gains)
    first = (
        f"*Does curriculum learning combine with distillation?* In {ahead} of {n_cases} cases the distilled "
        "curriculum branches average more than the distilled vanilla ones"
    )
    first += (
        f"; with {reps} repetitions no paired test is read (at least {MIN_REPETITIONS} are needed)"
        if reps < MIN_REPETITIONS
        else f", and in {helped} the gain is distinguishable from noise at the {alpha:g} level over {reps} "
        "repetitions"
    )
    if gains:
        first += (
            f". Curriculum minus vanilla among distilled branches, with {CONFIDENCE * 100:.0f} % intervals: "
            + "; ".join(f"{case} {with_interval(d)}" for case, d in gains)
        )
    first += ". " + (
        "These runs do not show that it does" + _span([d for _, d in gains])
        if not helped
        else "That holds for these cases at this scale only"
    )
    caveat = table_caveat(distilled, ("curriculum p (distilled)",), alpha)
    if caveat:
        first += ". " + caveat.removesuffix(".")
    first += (
        ". The curriculum choices were made for plain branches, and the distillation weight and temperature "
        "were fixed rather than searched."
    )
    curriculum = strategies[strategies["method"] == "curriculum"]
    exits = exit_names(strategies)
    n = int(curriculum["repetitions"].min()) if len(curriculum) else 0
    cells = [
        (row["strategy"], name, PairedDifference.from_row(row, f"{name} {{}}"), row[f"{name} p adjusted"])
        for _, row in curriculum.iterrows()
        for name in tested_exits(row["strategy"], exits)
    ]
    beyond = [(s, e, d) for s, e, d, p in cells if passes(p, d.n, alpha)]
    second = (
        f"*Does curriculum learning help end-to-end or layer-wise training?* Of the {len(cells)} comparisons "
        "of curriculum with vanilla (every trained exit of every way of training), "
    )
    second += (
        f"none is read: with {n} repetitions a paired test cannot be (at least {MIN_REPETITIONS} are needed)"
        if n < MIN_REPETITIONS
        else f"{len(beyond)} {'is' if len(beyond) == 1 else 'are'} distinguishable from noise at the "
        f"{alpha:g} level over {n} repetitions after Holm's correction across them"
    )
    second += (
        ": "
        + "; ".join(f"{STRATEGY_NAMES.get(s, s)} at {e}, {with_interval(d)}" for s, e, d in beyond)
        + ". That holds at this scale only."
        if beyond
        else ". These runs show neither a gain nor a loss from curriculum"
        + _span([d for *_, d, _ in cells])
        + "."
    )
    vanilla = strategies[(strategies["method"] == "vanilla") & (strategies["strategy"] != "plain")]
    if len(vanilla) and (strategies["strategy"] == "plain").any():
        finals = [
            (
                STRATEGY_NAMES.get(row["strategy"], row["strategy"]),
                PairedDifference.from_row(row, "final vs plain {}", "final vs plain"),
                row["final vs plain p adjusted"],
            )
            for _, row in vanilla.iterrows()
        ]
        family = int(strategies["final vs plain p adjusted"].notna().sum())
        passing = [(name, d) for name, d, p in finals if passes(p, d.n, alpha)]
        second += (
            " The trade-off the paper warns about would show as a final exit below the plain network's. With "
            "vanilla training the other ways' final exits differ from the plain network's by "
            + "; ".join(f"{name} {with_interval(d)}" for name, d, _ in finals)
        )
        pairs = min(d.n for _, d, _ in finals)
        corrected = (
            f". After Holm's correction across the table's {family} final-versus-plain comparisons (both "
            "methods), "
        )
        if pairs < MIN_REPETITIONS:
            second += (
                f". With {pairs} repetitions no test of it is read, so these runs neither show the trade-off "
                "nor rule out one within those intervals."
            )
        elif passing:
            second += (
                corrected
                + ", ".join(f"{name} ({d.mean:+.2f} points)" for name, d in passing)
                + f" {'is' if len(passing) == 1 else 'are'} distinguishable from noise at the {alpha:g} "
                "level; a negative difference among them is the trade-off, at this scale."
            )
        else:
            second += (
                corrected
                + f"none is distinguishable from noise at the {alpha:g} level, so these runs neither "
                "show the trade-off nor rule out one within those intervals."
            )
    second += (
        " These runs are short and small, stated above, and use one teacher and one stretched pacing without "
        "a search of their own; they say nothing about other exit weightings or about the paper's scale."
    )
    return first + "\n\n" + second


def _span(differences: list[PairedDifference]) -> str:
    """': their intervals together span a to b points, ...' ('' when no interval exists)."""
    lows = [d.low for d in differences if not pd.isna(d.low)]
    highs = [d.high for d in differences if not pd.isna(d.high)]
    if not lows:
        return ""
    return (
        f": their intervals together span {min(lows):+.2f} to {max(highs):+.2f} points, so differences of "
        "that size either way remain possible"
    )
