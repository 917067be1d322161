"""Exit policies: when a sample leaves a multi-exit network, and what that costs (dynamic inference).

The paper motivates early exits by inference under deadlines (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. I):
a sample stops at an early exit when that exit is good enough, or when its deadline leaves no time for more.
Given every exit's softmax outputs on a split (``probabilities[e]`` is N × classes, exits ordered from the
earliest to the final one) and the cost of leaving at each exit, a *policy* picks one exit per sample:

- ``confidence``: the first exit whose top probability reaches a threshold (Shallow-Deep Networks, BranchyNet
  use this or the next);
- ``entropy``: the first exit whose prediction entropy is at most a threshold;
- ``patience``: the first exit whose prediction has stayed the same for ``t`` consecutive exits (Zhou et
  al.'s PABEE, 2020);
- ``deadline``: the deepest exit whose cost fits the sample's budget (the paper's IoT setting);
- ``oracle``: the earliest correct exit, the upper bound no real policy reaches.

A sample that no exit satisfies leaves at the last one (the oracle: at the first, since no exit is right).
``cost[e]`` is what a sample pays when it leaves at exit e: the backbone up to that exit plus every branch
evaluated on the way (``exit_path_costs``). Thresholds are chosen on a calibration split, never on test
(``calibrate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CALIBRATION_SPLITS",
    "NoThreshold",
    "Outcome",
    "calibrate",
    "confidence",
    "deadline",
    "entropy",
    "evaluate",
    "exit_path_costs",
    "oracle",
    "patience",
    "sweep",
]

CALIBRATION_SPLITS = ("val", "hparam")  # thresholds may be chosen on these, never on "test"


def _stack(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """E × N × C array of the exits' outputs, checked."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in probabilities])
    if stacked.ndim != 3 or stacked.shape[0] < 1:
        raise ValueError(f"probabilities must be one N × classes array per exit, got shape {stacked.shape}")
    return stacked


def _first_true_or_last(satisfied: np.ndarray) -> np.ndarray:
    """Per sample (column of an E × N boolean array), the first exit that satisfies, else the last."""
    chosen = np.argmax(satisfied, axis=0)
    return np.where(satisfied.any(axis=0), chosen, satisfied.shape[0] - 1)


def confidence(probabilities: Sequence[np.ndarray], threshold: float) -> np.ndarray:
    """The exit of each sample: the first whose top softmax probability is ≥ ``threshold``."""
    return _first_true_or_last(_stack(probabilities).max(axis=2) >= threshold)


def entropy(probabilities: Sequence[np.ndarray], threshold: float) -> np.ndarray:
    """The exit of each sample: the first whose prediction entropy (nats) is ≤ ``threshold``."""
    p = _stack(probabilities)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=2)
    return _first_true_or_last(h <= threshold)


def patience(probabilities: Sequence[np.ndarray], t: int) -> np.ndarray:
    """The exit of each sample under PABEE's rule with patience ``t`` (Zhou et al., 2020, "BERT Loses
    Patience"): a counter starts at 0 at the first exit; at each later exit it grows by one when the
    predicted class equals the previous exit's and falls back to 0 when it does not; the sample leaves at
    the first exit where the counter reaches ``t``, else at the last. So ``t`` = 1 leaves where two exits
    in a row agree, and no sample leaves at the first exit; a network of E exits has E - 1 patiences.

    ``t`` is a whole number >= 1 (an integral float, as a table stores it, is accepted).
    """
    whole = isinstance(t, (int, np.integer)) or (
        isinstance(t, (float, np.floating)) and float(t).is_integer()
    )
    if isinstance(t, bool) or not whole or t < 1:
        raise ValueError(f"patience t must be a whole number >= 1, got {t!r}")
    predictions = _stack(probabilities).argmax(axis=2)
    counter = np.zeros(predictions.shape[1], dtype=int)
    reached = np.zeros_like(predictions, dtype=bool)
    for e in range(1, predictions.shape[0]):
        counter = np.where(predictions[e] == predictions[e - 1], counter + 1, 0)
        reached[e] = counter >= t
    return _first_true_or_last(reached)


def deadline(costs: Sequence[float], budgets) -> np.ndarray:
    """The exit of each sample: the deepest whose cost fits its budget (the first if none does)."""
    costs = np.asarray(costs, dtype=np.float64)
    if np.any(np.diff(costs) < 0):
        raise ValueError(f"costs must not decrease from one exit to the next, got {costs.tolist()}")
    fits = np.searchsorted(costs, np.asarray(budgets, dtype=np.float64), side="right") - 1
    return np.clip(fits, 0, len(costs) - 1)


def oracle(probabilities: Sequence[np.ndarray], labels) -> np.ndarray:
    """The exit of each sample: the earliest whose prediction is right (the first if none is)."""
    correct = _stack(probabilities).argmax(axis=2) == np.asarray(labels)
    return np.where(correct.any(axis=0), np.argmax(correct, axis=0), 0)


@dataclass(frozen=True)
class Outcome:
    """What a policy achieves on one split."""

    accuracy: float
    mean_cost: float
    exit_counts: tuple[int, ...]  # samples leaving at each exit


def evaluate(probabilities: Sequence[np.ndarray], labels, costs: Sequence[float], exits) -> Outcome:
    """Accuracy and mean cost when sample i leaves at ``exits[i]``."""
    p = _stack(probabilities)
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != (p.shape[0],):
        raise ValueError(f"need one cost per exit ({p.shape[0]}), got {costs.shape}")
    exits = np.asarray(exits)
    predictions = p[exits, np.arange(p.shape[1])].argmax(axis=1)
    return Outcome(
        accuracy=float(np.mean(predictions == np.asarray(labels))),
        mean_cost=float(costs[exits].mean()),
        exit_counts=tuple(int(c) for c in np.bincount(exits, minlength=p.shape[0])),
    )


def exit_path_costs(backbone_costs: Sequence[float], branch_costs: Sequence[float]) -> np.ndarray:
    """Cost of leaving at each exit: backbone up to it plus every branch evaluated so far.

    ``backbone_costs[e]`` is the backbone's cost up to exit e (the last: the whole backbone with its own
    classifier, the final exit); ``branch_costs`` the cost of each early branch, one fewer than exits.
    """
    backbone_costs = np.asarray(backbone_costs, dtype=np.float64)
    branches = np.asarray(branch_costs, dtype=np.float64)
    if branches.shape != (len(backbone_costs) - 1,):
        raise ValueError(
            f"need one branch cost per early exit ({len(backbone_costs) - 1}), got {branches.shape}"
        )
    tried = np.concatenate([np.cumsum(branches), [branches.sum()]])
    return backbone_costs + tried


def sweep(policy, probabilities, labels, costs, thresholds) -> list[tuple[float, Outcome]]:
    """``(threshold, Outcome)`` of ``policy(probabilities, threshold)`` for every threshold."""
    return [(t, evaluate(probabilities, labels, costs, policy(probabilities, t))) for t in thresholds]


class NoThreshold(ValueError):
    """No threshold of the sweep meets the cost budget on the calibration split."""


def calibrate(policy, split: str, probabilities, labels, costs, target_cost: float, thresholds) -> float:
    """The threshold with the best accuracy on ``split`` among those whose mean cost is ≤ ``target_cost``.

    ``split`` names the calibration data and must be one of ``CALIBRATION_SPLITS``: a threshold chosen on
    the test split would report a tuned, not a measured, accuracy. Ties go to the cheaper threshold.
    """
    if split not in CALIBRATION_SPLITS:
        raise ValueError(
            f"thresholds are chosen on {' or '.join(CALIBRATION_SPLITS)}, never on {split!r}: "
            "evaluate the chosen threshold on test afterwards"
        )
    fitting = [
        (o.accuracy, -o.mean_cost, t) for t, o in sweep(policy, probabilities, labels, costs, thresholds)
    ]
    fitting = [entry for entry in fitting if -entry[1] <= target_cost]
    if not fitting:
        raise NoThreshold(
            f"no threshold reaches a mean cost of {target_cost:g} on {split}; "
            "the cheapest policy sends every sample out at the first exit"
        )
    return max(fitting)[2]
