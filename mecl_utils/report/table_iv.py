"""Table IV (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. IV) built from the results store, and the paper's own.

For every case (backbone, dataset, branch): the mean ± standard deviation over repetitions of the branch's
test accuracy for vanilla, curriculum, anti-curriculum and random-curriculum training, with the chosen
optimizer, learning rate, teacher and pacing. We add what the paper does not report: each method's paired
difference from vanilla across repetitions (the methods of one repetition share their initial weights, so the
pairs are natural), with its 95 % interval and the p-value the book's rule reads
(``statistics.compare_with_baseline``: curriculum primary, anti and random secondary and Holm-corrected).
``PAPER_TABLE_IV`` holds the paper's own numbers, cited, so the book can show both tables side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mecl_utils.protocol.results import CASE, METHOD_COLUMNS, require_one_configuration
from mecl_utils.report.statistics import compare_with_baseline

__all__ = ["PAPER_TABLE_IV", "paper_table_iv", "table_iv"]


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
