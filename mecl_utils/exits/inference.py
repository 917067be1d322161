"""The multi-exit network at inference: accuracy against compute, and real early exit on this CPU.

The paper trains its exits for dynamic inference (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. I): a sample
leaves at an early exit when that exit is good enough. Here the multi-exit network of one repetition is the
fine-tuned backbone's own classifier as the final exit plus that repetition's trained branches, one per
Table II placement. Nothing is retrained: the branches' softmax outputs were kept by the protocol
(``experiments.branch_outputs``) and the final exit's are computed once and cached
(``final_exit_outputs``). The cost of leaving at an exit comes from the MAC counter (``costs``), and the
exit policies from ``exits``.

- ``exit_network``: outputs, labels and per-exit costs of every (method, repetition) of a profile's grid;
- ``policy_curves``: accuracy against mean cost of a threshold sweep on one split;
- ``budget_table``: thresholds calibrated on a split other than test to meet a cost budget, evaluated on test;
and ``latency.staged_latency`` runs the network cut at its exits, stage by stage, on this CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mecl_utils.cache import array_fingerprint, cached_arrays
from mecl_utils.exits import policies
from mecl_utils.networks.backbones import PREDICT_BATCH_SIZE, top1_accuracy
from mecl_utils.networks.branches import branch_layer
from mecl_utils.networks.costs import exit_costs, total_macs
from mecl_utils.protocol.branch_runs import branch_outputs
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.results import require_one_configuration
from mecl_utils.protocol.runs import OUTPUT_SPLITS
from mecl_utils.protocol.teachers import backbone_key, trained_backbone
from mecl_utils.report.statistics import compare_with_baseline
from mecl_utils.run.case_networks import load_splits
from mecl_utils.strategies.network_runs import exit_keys, network_outputs

__all__ = [
    "MIN_OPERATING_POINTS",
    "POLICIES",
    "ExitNetwork",
    "architecture_exit_costs",
    "area_under_curves",
    "auc_tests",
    "budget_summary",
    "budget_table",
    "common_cost_range",
    "curves_on_grid",
    "deadline_outcomes",
    "exit_accuracies",
    "exit_network",
    "final_exit_outputs",
    "operating_points",
    "oracle_outcomes",
    "over_budget",
    "policies_for_auc",
    "policy_curves",
    "strategy_exit_network",
    "thresholds_for",
]


def final_exit_outputs(
    profile: Profile, backbone: str, dataset_name: str, data_dir=None
) -> dict[str, np.ndarray]:
    """The backbone classifier's softmax outputs on ``OUTPUT_SPLITS`` (cached with the backbone)."""
    dataset, splits = load_splits(profile, dataset_name, None if data_dir is None else str(data_dir))
    parts = {
        "version": 1,
        "classifier": backbone_key(profile, backbone, dataset, splits, seed=profile.seed),
        **{f"{name}_index": array_fingerprint(getattr(splits, name).index) for name in OUTPUT_SPLITS},
    }

    def compute() -> dict[str, np.ndarray]:
        model = trained_backbone(profile, backbone, dataset, splits, seed=profile.seed)
        return {
            name: model.predict(getattr(splits, name).x, batch_size=PREDICT_BATCH_SIZE, verbose=0)
            for name in OUTPUT_SPLITS
        }

    return cached_arrays("final_exit_outputs", parts, compute)


@dataclass(frozen=True, eq=False)
class ExitNetwork:
    """Every repetition's multi-exit network of one backbone and data set, ready for exit policies."""

    exit_names: tuple[str, ...]  # "branch 1", ..., "final"
    layers: tuple[str, ...]  # the Keras layer each early exit reads
    path_costs: np.ndarray  # MACs of leaving at each exit: the backbone so far and every branch tried
    classifier_macs: int  # the backbone classifier alone, without exits: the network the exits are added to
    labels: dict[str, np.ndarray]  # split -> labels
    outputs: dict[tuple[str, int], dict[str, list[np.ndarray]]]  # (method, repetition) -> split -> per exit

    @property
    def cost_fractions(self) -> np.ndarray:
        """Cost of leaving at each exit as a fraction of the full multi-exit network (every exit tried)."""
        return self.path_costs / self.path_costs[-1]

    @property
    def num_classes(self) -> int:
        return int(next(iter(self.outputs.values()))["test"][0].shape[1])

    @property
    def classifier_fraction(self) -> float:
        """The plain classifier's cost as a fraction of the full multi-exit network."""
        return self.classifier_macs / float(self.path_costs[-1])


def exit_network(
    profile: Profile, results: pd.DataFrame, *, data_dir=None, stage: str = "repetition"
) -> ExitNetwork:
    """The multi-exit networks of the ``stage`` rows in ``results`` (one backbone and data set).

    ``stage`` "repetition": the Table IV branches; "distillation": the distilled ones (``strategy_runs``).
    The final exit is the backbone's own classifier. Needs every branch of the profile for a (method,
    repetition) to count it; the others are left out. Rows of several configurations are refused
    (``results.require_one_configuration``): a (method, repetition) names one network.
    """
    backbone, dataset_name = profile.backbones[0], profile.datasets[0]
    reps = results[(results["stage"] == stage) & (results["backbone"] == backbone)]
    reps = reps[reps["dataset"] == dataset_name]
    if reps.empty:
        raise ValueError(f"no {stage} rows for this profile's backbone yet: run the grid first")
    require_one_configuration(reps)
    layer_names, path_costs, full, splits = _exit_costs(profile, data_dir)
    final = final_exit_outputs(profile, backbone, dataset_name, data_dir)
    numbers = tuple(profile.branch_numbers)
    outputs = {}
    for (method, repetition), group in reps.groupby(["method", "repetition"]):
        by_branch = group.set_index("branch")["run_id"]
        if not set(numbers) <= set(by_branch.index):
            continue
        stored = [branch_outputs(by_branch[number]) for number in numbers]
        outputs[method, int(repetition)] = {
            split: [arrays[split] for arrays in stored] + [final[split]] for split in OUTPUT_SPLITS
        }
    return ExitNetwork(
        exit_names=(*(f"branch {number}" for number in numbers), "final"),
        layers=layer_names,
        path_costs=path_costs,
        classifier_macs=full,
        labels={name: getattr(splits, name).y for name in OUTPUT_SPLITS},
        outputs=outputs,
    )


def _exit_costs(profile: Profile, data_dir) -> tuple[tuple[str, ...], np.ndarray, int, object]:
    """The profile's branch layers, the MACs of leaving at each exit, the classifier's MACs, the splits."""
    backbone, dataset_name = profile.backbones[0], profile.datasets[0]
    dataset, splits = load_splits(profile, dataset_name, None if data_dir is None else str(data_dir))
    classifier = trained_backbone(profile, backbone, dataset, splits, seed=profile.seed)
    layer_names = tuple(branch_layer(backbone, dataset_name, number) for number in profile.branch_numbers)
    per_exit = [exit_costs(classifier, layer) for layer in layer_names]
    full = total_macs(classifier)
    path_costs = policies.exit_path_costs(
        [*(cost.backbone.macs for cost in per_exit), full], [cost.branch.macs for cost in per_exit]
    )
    return layer_names, path_costs, full, splits


def strategy_exit_network(
    profile: Profile, results: pd.DataFrame, strategy: str, *, data_dir=None
) -> ExitNetwork:
    """The networks that ``network_runs.run_network_strategies`` trained ``strategy``'s way, per run.

    Every exit, the final one included, comes from the run itself; the costs are the architecture's, the
    same for every strategy.
    """
    rows = results[(results["stage"] == "network_strategy") & (results["strategy"] == strategy)]
    rows = rows[(rows["backbone"] == profile.backbones[0]) & (rows["dataset"] == profile.datasets[0])]
    if rows.empty:
        raise ValueError(f"no {strategy!r} network runs for this profile's backbone yet: run them first")
    require_one_configuration(rows)
    layer_names, path_costs, full, splits = _exit_costs(profile, data_dir)
    names = exit_keys(len(layer_names))
    outputs = {}
    for _, row in rows.iterrows():
        stored = network_outputs(row["run_id"])
        outputs[row["method"], int(row["repetition"])] = {
            split: [stored[f"{split}_{name}"] for name in names] for split in OUTPUT_SPLITS
        }
    return ExitNetwork(
        exit_names=(*(f"branch {number}" for number in profile.branch_numbers), "final"),
        layers=layer_names,
        path_costs=path_costs,
        classifier_macs=full,
        labels={name: getattr(splits, name).y for name in OUTPUT_SPLITS},
        outputs=outputs,
    )


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


def architecture_exit_costs(network: str, dataset_name: str, num_classes: int, *, image_size=None, alpha=1.0):
    """Path costs of a Table II network's two exits and final exit, as fractions of its plain classifier.

    Built with random weights (MACs do not depend on them) and cached, so a chapter can compare the
    profiles' networks with the paper's without training or building them again.
    """
    from mecl_utils.networks.backbones import build_classifier

    parts = {"version": 1, "network": network, "dataset": dataset_name, "classes": num_classes}
    parts.update(image_size=image_size, alpha=alpha)

    def compute() -> dict[str, np.ndarray]:
        model = build_classifier(network, num_classes, image_size=image_size, weights=None, alpha=alpha)
        costs = [exit_costs(model, branch_layer(network, dataset_name, number)) for number in (1, 2)]
        backbone = [cost.backbone.macs for cost in costs] + [total_macs(model)]
        return {
            "backbone": np.array(backbone, dtype=np.int64),
            "branch": np.array([c.branch.macs for c in costs]),
        }

    arrays = cached_arrays("architecture_costs", parts, compute)
    path = policies.exit_path_costs(arrays["backbone"], arrays["branch"])
    return pd.DataFrame(
        {
            "network": network,
            "exit": ["branch 1", "branch 2", "final"],
            "backbone MACs": arrays["backbone"],
            "path MACs": path,
            "of the classifier": path / arrays["backbone"][-1],
        }
    )


def exit_accuracies(network: ExitNetwork, split: str = "test") -> pd.DataFrame:
    """Every exit used alone (all samples leave there): its cost fraction and accuracy, per run."""
    rows = []
    for (method, repetition), outputs in network.outputs.items():
        for e, name in enumerate(network.exit_names):
            accuracy = top1_accuracy(outputs[split][e], network.labels[split])
            rows.append(
                {"method": method, "repetition": repetition, "exit": name,
                 "cost": float(network.cost_fractions[e]), "accuracy": accuracy}
            )  # fmt: skip
    return pd.DataFrame(rows)


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
