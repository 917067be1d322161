"""Accuracy against compute of a multi-exit network (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. I): sweeps,
budgets, areas under the curves and their paired tests, the oracle, and deadlines.

An exit policy (``policies``) decides at which exit each sample leaves a ``multi_exit.ExitNetwork``; its
threshold trades accuracy for cost:

- ``policy_curves``: accuracy against mean cost of a threshold sweep on one split (``thresholds_for``);
- ``budget_table``: thresholds calibrated on a split other than test to meet a cost budget, evaluated on
  test (``budget_summary``, ``over_budget``);
- ``area_under_curves``, ``auc_tests``: each run's mean accuracy over the cost range every run covers, and
  each method's paired comparison with vanilla by ``statistics.compare_with_baseline``; only policies with
  at least ``MIN_OPERATING_POINTS`` distinct operating points are compared (``policies_for_auc``);
- ``oracle_outcomes``: each sample at its earliest correct exit, the bound no policy beats;
- ``deadline_outcomes``: each sample at the deepest exit its own compute budget allows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mecl_utils.exits import policies
from mecl_utils.exits.multi_exit import ExitNetwork
from mecl_utils.statistics import compare_with_baseline

__all__ = [
    "MIN_OPERATING_POINTS",
    "POLICIES",
    "area_under_curves",
    "auc_tests",
    "budget_summary",
    "budget_table",
    "common_cost_range",
    "curves_on_grid",
    "deadline_outcomes",
    "operating_points",
    "oracle_outcomes",
    "over_budget",
    "policies_for_auc",
    "policy_curves",
    "thresholds_for",
]

POLICIES = {"confidence": policies.confidence, "entropy": policies.entropy, "patience": policies.patience}
# An area under an accuracy-cost curve of fewer distinct points is a straight line between two of them, or
# a single point: it compares where the policy happens to put its few settings, not a trade-off.
MIN_OPERATING_POINTS = 3


def thresholds_for(policy: str, num_classes: int, num_exits: int, n: int = 101) -> np.ndarray:
    """The sweep of a policy's threshold, from every sample at the last exit towards every sample at the
    first: confidence in [0, 1], entropy in nats up to log(classes), the largest there is; patience (PABEE)
    t = E - 1, ..., 1 for E exits (t = E - 1 sends every sample to the last exit; no patience sends a sample
    out at the first)."""
    if policy == "confidence":
        return np.linspace(1.0, 0.0, n)
    if policy == "entropy":
        return np.linspace(0.0, np.log(num_classes) * (1 + 1e-9), n)
    if policy == "patience":
        return np.arange(num_exits - 1, 0, -1)
    raise ValueError(f"unknown policy {policy!r}; valid policies: {', '.join(POLICIES)}")


def operating_points(curves: pd.DataFrame) -> int:
    """How many distinct (cost, accuracy) points a policy's sweep has: the fewest of any run in ``curves``
    (``policy_curves``). Thresholds that send the same samples to the same exits count once."""
    points = curves.assign(cost=curves["cost"].round(12), accuracy=curves["accuracy"].round(12))
    points = points.drop_duplicates(["method", "repetition", "cost", "accuracy"])
    return int(points.groupby(["method", "repetition"]).size().min())


def policies_for_auc(
    network: ExitNetwork, split: str = "test"
) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The policies whose curves an area under the curve can compare, and those it cannot.

    Returns the swept curves (``policy_curves``) of every policy with at least ``MIN_OPERATING_POINTS``
    distinct operating points, and, for each policy left out, its number of points.
    """
    kept, left_out = {}, {}
    for name in POLICIES:
        curves = policy_curves(network, name, split)
        points = operating_points(curves)
        if points >= MIN_OPERATING_POINTS:
            kept[name] = curves
        else:
            left_out[name] = points
    return kept, left_out


def policy_curves(network: ExitNetwork, policy: str, split: str = "test") -> pd.DataFrame:
    """Accuracy and mean cost (fraction of the full multi-exit network's MACs) of every threshold, per run."""
    rows = []
    for (method, repetition), outputs in network.outputs.items():
        sweep = policies.sweep(
            POLICIES[policy],
            outputs[split],
            network.labels[split],
            network.cost_fractions,
            thresholds_for(policy, network.num_classes, len(network.exit_names)),
        )
        rows += [
            {
                "method": method,
                "repetition": repetition,
                "threshold": float(t),
                "cost": o.mean_cost,
                "accuracy": o.accuracy,
            }
            for t, o in sweep
        ]
    return pd.DataFrame(rows)


def budget_table(network: ExitNetwork, policy: str, budgets, calibration_split: str) -> pd.DataFrame:
    """Per run and budget: the threshold chosen on ``calibration_split`` to stay within the budget
    (a fraction of the full multi-exit network's MACs), and its cost and accuracy on test (NaN: no exit
    is that cheap)."""
    rows = []
    for (method, repetition), outputs in network.outputs.items():
        for budget in budgets:
            row = {"method": method, "repetition": repetition, "budget": float(budget)}
            try:
                threshold = policies.calibrate(
                    POLICIES[policy],
                    calibration_split,
                    outputs[calibration_split],
                    network.labels[calibration_split],
                    network.cost_fractions,
                    budget,
                    thresholds_for(policy, network.num_classes, len(network.exit_names)),
                )
            except policies.NoThreshold:
                rows.append({**row, "threshold": np.nan, "cost": np.nan, "accuracy": np.nan})
                continue
            chosen = POLICIES[policy](outputs["test"], threshold)
            test = policies.evaluate(outputs["test"], network.labels["test"], network.cost_fractions, chosen)
            rows.append(
                {**row, "threshold": float(threshold), "cost": test.mean_cost, "accuracy": test.accuracy}
            )
    return pd.DataFrame(rows)


def common_cost_range(curves: pd.DataFrame) -> tuple[float, float]:
    """The cost range every run's sweep covers: from the largest minimum to the smallest maximum."""
    spans = curves.groupby(["method", "repetition"])["cost"].agg(["min", "max"])
    return float(spans["min"].max()), float(spans["max"].min())


def curves_on_grid(curves: pd.DataFrame, grid: np.ndarray) -> pd.DataFrame:
    """Each run's swept accuracy interpolated at the costs ``grid``.

    The curve as swept, not its upper envelope: taking the best threshold at each cost would choose on test.
    """
    rows = []
    for (method, repetition), run in curves.groupby(["method", "repetition"]):
        run = run.groupby("cost", as_index=False)["accuracy"].mean().sort_values("cost")
        accuracy = np.interp(grid, run["cost"].to_numpy(), run["accuracy"].to_numpy())
        rows += [
            {"method": method, "repetition": repetition, "cost": c, "accuracy": a}
            for c, a in zip(grid, accuracy, strict=True)
        ]
    return pd.DataFrame(rows)


def area_under_curves(curves: pd.DataFrame, points: int = 101) -> pd.DataFrame:
    """Per run, the mean accuracy over the common cost range (area under the curve / width of the range)."""
    low, high = common_cost_range(curves)
    grid = np.linspace(low, high, points)
    on_grid = curves_on_grid(curves, grid)
    area = on_grid.groupby(["method", "repetition"])["accuracy"].mean().rename("auc").reset_index()
    return area.assign(cost_low=low, cost_high=high)


def budget_summary(budget: pd.DataFrame) -> pd.DataFrame:
    """``budget_table`` as a table, a row per method and a column per budget: test accuracy (%) mean ± std
    over repetitions, and in brackets the mean cost the runs realised on test (% of the full network).

    The threshold keeps the mean cost within the budget on the calibration split only; on test it may
    land above it. A cell where some run's test cost is over the budget says in how many runs, e.g.
    "81.20 ± 0.40 (cost 51.3 %; 2 of 3 over)". "–": no threshold meets the budget.
    """
    cells = {}
    for (method, limit), runs in budget.groupby(["method", "budget"]):
        met = runs.dropna(subset=["accuracy"])
        text = "–"
        if len(met):
            accuracy = 100 * met["accuracy"]
            text = f"{accuracy.mean():.2f}"
            if len(met) > 1:
                text += f" ± {accuracy.std(ddof=1):.2f}"
            over = int((met["cost"] > limit).sum())
            text += f" (cost {100 * met['cost'].mean():.1f} %" + (
                f"; {over} of {len(met)} over)" if over else ")"
            )
        cells.setdefault(method, {})[f"budget {100 * limit:.0f} %"] = text
    order = [m for m in ("vanilla", "curriculum", "anti", "random") if m in cells]
    return pd.DataFrame(cells).T.loc[order]


def over_budget(budget: pd.DataFrame) -> pd.DataFrame:
    """The runs of ``budget_table`` whose mean test cost is above their budget (a threshold met it on the
    calibration split only)."""
    return budget[budget["cost"] > budget["budget"]]


def auc_tests(curves: pd.DataFrame) -> pd.DataFrame:
    """Per method: the mean area under its accuracy-cost curves (%) and its paired comparison with vanilla.

    The comparisons are ``statistics.compare_with_baseline``'s (curriculum primary, anti and random
    secondary and Holm-corrected): ``minus vanilla (points)``, its 95 % interval (``low``, ``high``),
    ``pairs``, ``role`` and ``paired p``, the p-value the rule reads. Vanilla's row has no comparison.
    """
    wide = area_under_curves(curves).pivot(index="repetition", columns="method", values="auc") * 100
    methods = [method for method in ("vanilla", "curriculum", "anti", "random") if method in wide]
    table = pd.DataFrame({"mean AUC (%)": wide[methods].mean()})
    columns = {"minus vanilla (points)": "mean", "low": "low", "high": "high", "pairs": "n"}
    columns.update({"paired p": "p adjusted", "role": "role"})
    compared = compare_with_baseline(wide) if "vanilla" in wide else pd.DataFrame(columns=[*columns.values()])
    for column, source in columns.items():
        table[column] = compared[source].reindex(table.index)
    if "vanilla" in table.index:
        table.loc["vanilla", "role"] = "baseline"
    return table.assign(repetitions=len(wide))


def oracle_outcomes(network: ExitNetwork, split: str = "test") -> pd.DataFrame:
    """Per run, the oracle (each sample at its earliest correct exit): the bound no policy can beat."""
    rows = []
    for (method, repetition), outputs in network.outputs.items():
        chosen = policies.oracle(outputs[split], network.labels[split])
        outcome = policies.evaluate(outputs[split], network.labels[split], network.cost_fractions, chosen)
        rows.append(
            {
                "method": method,
                "repetition": repetition,
                "cost": outcome.mean_cost,
                "accuracy": outcome.accuracy,
            }
        )
    return pd.DataFrame(rows)


def deadline_outcomes(network: ExitNetwork, budgets: np.ndarray, split: str = "test") -> pd.DataFrame:
    """Per run, each sample leaving at the deepest exit its own budget allows (a fraction of the full
    network's MACs). A sample whose budget does not reach the first exit misses its deadline: it gets no
    answer, counts as wrong, and has spent its whole budget."""
    missed = budgets < network.cost_fractions[0]
    chosen = policies.deadline(network.cost_fractions, budgets)
    rows = []
    for (method, repetition), outputs in network.outputs.items():
        p = np.stack(outputs[split])
        right = p[chosen, np.arange(len(chosen))].argmax(axis=1) == network.labels[split]
        spent = np.where(
            missed, budgets, network.cost_fractions[chosen]
        )  # a miss computes until its deadline
        rows.append(
            {"method": method, "repetition": repetition, "accuracy": float(np.mean(right & ~missed)),
             "missed": float(missed.mean()), "cost": float(spent.mean())}
        )  # fmt: skip
    return pd.DataFrame(rows)
