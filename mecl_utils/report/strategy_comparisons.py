"""The result tables of the paper's Sec. V questions: distilled exits and whole-network strategies.

Both tables only reshape stored rows (``strategies.distilled_exits``' stage ``distillation`` beside Table IV's
``repetition``, ``strategies.network_runs``' stage ``network_strategy``): per group, each accuracy's mean and
std over repetitions, then the paired differences fixed in advance, each with its 95 % interval
(``statistics.paired_difference``) and Holm-corrected within its family (``statistics.holm``).
``strategy_tables`` formats and reads them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mecl_utils.protocol.results import require_one_configuration
from mecl_utils.statistics import PairedDifference, holm, paired_difference
from mecl_utils.strategies.network_runs import NETWORK_STRATEGIES, STRATEGY_METHODS

__all__ = ["distillation_table", "strategy_table"]


def distillation_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per case: plain and distilled branches' test accuracy (%, mean and std) with each method, paired tests.

    Three paired differences, each as ``<what> difference|low|high|p (<among>)`` in points with its 95 %
    interval (``statistics.paired_difference``): ``curriculum ... (distilled)``, distilled curriculum minus
    distilled vanilla, the comparison fixed in advance, one per case, read as it is; ``curriculum ...
    (plain)``, Table IV's comparison on the same repetitions; ``distillation ... (vanilla)``, distilled
    vanilla minus plain vanilla, a secondary comparison whose family is the table's cases:
    ``distillation p adjusted (vanilla)`` is Holm-corrected across them. Pairs are repetitions (shared
    seeds); only repetitions that have all four runs count.
    """
    stages = {"repetition": "plain", "distillation": "distilled"}
    rows = results[results["stage"].isin(list(stages)) & results["method"].isin(list(STRATEGY_METHODS))]
    if not (rows["stage"] == "distillation").any():
        raise ValueError("no distilled runs yet: run run_distillation first")
    require_one_configuration(rows.assign(method=rows["stage"].map(stages) + " " + rows["method"]))
    table = []
    for (backbone, dataset, branch), group in rows.groupby(["backbone", "dataset", "branch"], sort=False):
        labels = group["stage"].map(stages) + " " + group["method"]
        accuracy = (
            group.assign(group=labels).pivot_table(index="repetition", columns="group", values="accuracy")
            * 100
        ).dropna()
        if accuracy.shape[1] < 4:
            continue
        entry = {"backbone": backbone, "dataset": dataset, "branch": branch, "repetitions": len(accuracy)}
        for name in accuracy.columns:
            entry[f"{name} mean"] = accuracy[name].mean()
            entry[f"{name} std"] = accuracy[name].std(ddof=1) if len(accuracy) > 1 else np.nan
        for template, (baseline, other) in (
            ("curriculum {} (distilled)", ("distilled vanilla", "distilled curriculum")),
            ("curriculum {} (plain)", ("plain vanilla", "plain curriculum")),
            ("distillation {} (vanilla)", ("plain vanilla", "distilled vanilla")),
        ):
            difference = paired_difference(accuracy[baseline], accuracy[other])
            entry.update(_difference_columns(template, difference))
        table.append(entry)
    table = pd.DataFrame(table)
    if len(table):
        table["distillation p adjusted (vanilla)"] = holm(table["distillation p (vanilla)"])
    return table


def _difference_columns(template: str, difference: PairedDifference, *, pairs: bool = False) -> dict:
    """A paired difference as table columns named by ``template`` ('final {}' gives 'final low', ...)."""
    fields = {"difference": difference.mean, "low": difference.low, "high": difference.high}
    columns = {template.format(key): value for key, value in fields.items()}
    columns[template.format("p")] = difference.p
    if pairs:
        columns[template.format("pairs")] = difference.n
    return columns


def strategy_table(results: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Per strategy and method: each exit's accuracy on ``split`` (mean and std over repetitions, in %).

    Beside each curriculum row, curriculum minus vanilla of the same strategy (the two share every seed of a
    repetition) at every exit that trains (the plain network's final exit only: its branches have loss weight
    0), paired over repetitions: ``<exit> difference``, ``low``, ``high`` (its 95 % interval, in points),
    ``p``, ``pairs``. No exit was singled out in advance, so these tests are one family, the whole table's:
    ``<exit> p adjusted`` is Holm-corrected across all of them. ``final vs plain``: the final exit's paired
    difference to the plain network's under the same method, the trade-off the paper warns about, with
    ``final vs plain low``, ``high``, ``p``, ``pairs``; its family is every other strategy under either
    method, Holm-corrected likewise (``final vs plain p adjusted``).
    """
    rows = results[results.get("stage") == "network_strategy"] if len(results) else results
    if not len(rows):
        raise ValueError("no network strategy rows yet: run run_network_strategies first")
    columns = sorted(c for c in rows.columns if c.startswith(f"{split}_accuracy_"))
    exits = [c.removeprefix(f"{split}_accuracy_") for c in columns]
    exits = sorted(exits, key=lambda name: (name == "final", name))

    def accuracy(runs: pd.DataFrame, name: str) -> pd.Series:
        return runs.set_index("repetition")[f"{split}_accuracy_{name}"] * 100

    table = []
    for (backbone, dataset, strategy, method), group in rows.groupby(
        ["backbone", "dataset", "strategy", "method"], sort=False
    ):
        entry = {"backbone": backbone, "dataset": dataset, "strategy": strategy, "method": method}
        for name in exits:
            values = group[f"{split}_accuracy_{name}"] * 100
            entry[f"{name} mean"] = values.mean()
            entry[f"{name} std"] = values.std(ddof=1) if len(values) > 1 else np.nan
            if method == "curriculum" and (strategy != "plain" or name == "final"):  # plain: untrained exits
                vanilla = rows[(rows["strategy"] == strategy) & (rows["method"] == "vanilla")
                               & (rows["backbone"] == backbone) & (rows["dataset"] == dataset)]  # fmt: skip
                difference = paired_difference(accuracy(vanilla, name), accuracy(group, name))
                entry.update(_difference_columns(f"{name} {{}}", difference, pairs=True))
        plain = rows[(rows["strategy"] == "plain") & (rows["method"] == method)
                     & (rows["backbone"] == backbone) & (rows["dataset"] == dataset)]  # fmt: skip
        versus_plain = _difference_columns(
            "final vs plain {}",
            paired_difference(accuracy(plain, "final"), accuracy(group, "final")),
            pairs=True,
        )
        entry["final vs plain"] = versus_plain.pop("final vs plain difference")
        entry.update(versus_plain)
        entry["repetitions"] = group["repetition"].nunique()
        table.append(entry)
    # Rows arrive in the order the runs finished; the table reads strategy by strategy, vanilla first.
    order = {name: index for index, name in enumerate((*NETWORK_STRATEGIES, *STRATEGY_METHODS))}

    def place(entry: dict) -> tuple:
        rank = [order.get(entry[key], len(order)) for key in ("strategy", "method")]
        return (entry["backbone"], entry["dataset"], *rank)

    table.sort(key=place)
    table = pd.DataFrame(table)
    tested = [f"{name} p" for name in exits if f"{name} p" in table]
    adjusted = holm(table[tested].to_numpy(dtype=float).ravel()).reshape(len(table), len(tested))
    for column, values in zip(tested, adjusted.T, strict=True):
        table[f"{column} adjusted"] = values
    trade_off = table["final vs plain p"].where(table["strategy"] != "plain")
    table["final vs plain p adjusted"] = holm(trade_off)
    return table
