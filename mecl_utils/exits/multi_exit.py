"""The multi-exit network (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. I): its exits' outputs and costs.

The paper trains its exits for dynamic inference: a sample leaves at an early exit when that exit is good
enough. Here the multi-exit network of one repetition is the fine-tuned backbone's own classifier as the
final exit plus that repetition's trained branches, one per Table II placement. Nothing is retrained: the
branches' softmax outputs were kept by the protocol (``branch_runs.branch_outputs``) and the final exit's are
computed once and cached (``final_exit_outputs``). The cost of leaving at an exit comes from the MAC counter
(``costs``).

- ``exit_network``: outputs, labels and per-exit costs of every (method, repetition) of a profile's grid;
- ``strategy_exit_network``: the same for networks trained whole (``network_runs``);
- ``architecture_exit_costs``: the exits' costs of a Table II network, without training it;
- ``exit_accuracies``: every exit used alone, its cost and accuracy per run.

What exit policies make of these networks is ``accuracy_cost``'s; ``latency.staged_latency`` runs the
network cut at its exits, stage by stage, on this CPU.
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
from mecl_utils.protocol.trained_networks import backbone_key, trained_backbone
from mecl_utils.run.case_networks import load_splits
from mecl_utils.strategies.network_runs import exit_keys, network_outputs

__all__ = [
    "ExitNetwork",
    "architecture_exit_costs",
    "exit_accuracies",
    "exit_network",
    "final_exit_outputs",
    "strategy_exit_network",
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

    ``stage`` "repetition": the Table IV branches; "distillation": the distilled ones (``distilled_exits``).
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
