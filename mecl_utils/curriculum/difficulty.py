"""Difficulty beyond a teacher's loss: prediction depth, exit agreement, forgetting events, and label noise.

Bakhtiarnia, Zhang & Iosifidis (2021, Sec. III) score a training sample by a transfer teacher's loss. Three
other measures of difficulty are known since, each a score per training sample that the sorting function
(``sorting.order``) can take in place of a loss, with the same seeded tie-break (these scores are whole
numbers, so ties are the rule, not the exception):

- *prediction depth* (Baldock, Maennel & Neyshabur, 2021): k-nearest-neighbour probes (their k = 30) on a
  frozen network's activations at a series of layers each predict every sample's class from its neighbours;
  the depth is the earliest layer from which every later probe agrees with the final prediction. Easy
  samples are settled early in the network, hard ones only at the end;
- *exit agreement*: the same question asked of a trained multi-exit network, the early-exit question itself:
  the earliest exit from which every later exit agrees with the final one;
- *forgetting events* (Toneva et al., 2019): how often a sample goes from classified correctly to
  incorrectly during training; a sample never classified correctly counts as forgotten without end.

``symmetric_label_noise`` is the noisy-label condition under which curricula are expected to matter (Wu, Dyer
& Neyshabur, 2021): an exact fraction of labels moved to another class drawn uniformly.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

__all__ = [
    "LABEL_SCORES",
    "PROBE_NEIGHBOURS",
    "SCORES",
    "agreement_depth",
    "exit_agreement",
    "forgetting_events",
    "knn_probe_predictions",
    "prediction_depth",
    "reads_labels",
    "symmetric_label_noise",
]

PROBE_NEIGHBOURS = 30  # Baldock et al.'s k
# The scores a profile may name where it names a teacher (protocol.difficulty_scores computes them).
SCORES = ("prediction_depth", "exit_agreement", "forgetting_events")
# Those that read each sample's own label, as a teacher's loss does: a noisy-label condition counts them
# against the noisy labels. Depth and agreement compare a network's layers or exits with each other.
LABEL_SCORES = ("forgetting_events",)


def reads_labels(teacher: str) -> bool:
    """Whether an ordering by ``teacher`` (a teacher network's name, or a score) reads each sample's label."""
    return teacher not in SCORES or teacher in LABEL_SCORES


def knn_probe_predictions(features, labels, k: int = PROBE_NEIGHBOURS) -> np.ndarray:
    """Each sample's class by majority vote of its ``k`` nearest *other* samples (Euclidean, flattened).

    Leave-one-out: a sample never votes for itself. A tied vote goes to the tied class of the nearest
    neighbour among the tied classes, so the probe is a pure function of its inputs.
    """
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    labels = np.asarray(labels)
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if not 1 <= k < len(labels):
        raise ValueError(f"k must be between 1 and the number of samples - 1 ({len(labels) - 1}), got {k}")
    _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    neighbours = np.array([row[row != i][:k] for i, row in enumerate(neighbours)])  # drop the sample itself
    votes = labels[neighbours]  # (n, k), nearest first
    classes = np.unique(labels)
    counts = (votes[:, :, None] == classes[None, None, :]).sum(axis=1)  # (n, classes)
    tied = counts == counts.max(axis=1, keepdims=True)
    in_tied = tied[np.arange(len(votes))[:, None], np.searchsorted(classes, votes)]  # (n, k)
    return votes[np.arange(len(votes)), in_tied.argmax(axis=1)]


def agreement_depth(predictions, final) -> np.ndarray:
    """Per sample, the first index l such that ``predictions[l:]`` all equal ``final`` (``len(predictions)``
    where even the last row disagrees). ``predictions``: (layers or exits, samples)."""
    predictions, final = np.asarray(predictions), np.asarray(final)
    agrees = predictions == final[None, :]
    # Reading from the last row back, the run of agreeing rows ends at the first disagreement.
    settled_from_end = np.cumprod(agrees[::-1], axis=0).sum(axis=0)
    return len(predictions) - settled_from_end


def prediction_depth(layer_features, labels, final=None, k: int = PROBE_NEIGHBOURS) -> np.ndarray:
    """Baldock et al.'s prediction depth: k-NN probes at every layer of ``layer_features`` (shallow to deep,
    each an array with one row per sample), then ``agreement_depth`` against ``final`` (default: the
    deepest probe's predictions; pass the network's own predictions to follow the paper exactly)."""
    probes = np.stack([knn_probe_predictions(features, labels, k) for features in layer_features])
    return agreement_depth(probes, probes[-1] if final is None else final)


def exit_agreement(exit_predictions) -> np.ndarray:
    """The earliest exit from which every later exit agrees with the last (the final classifier);
    ``exit_predictions``: (exits, samples), shallow to deep, the final classifier last."""
    exit_predictions = np.asarray(exit_predictions)
    return agreement_depth(exit_predictions, exit_predictions[-1])


def forgetting_events(correct) -> np.ndarray:
    """Per sample, how often it went from correct to incorrect across the rows of ``correct`` (checks in
    training order, samples in columns); ``inf`` for a sample never correct (Toneva et al.'s convention)."""
    correct = np.asarray(correct, dtype=bool)
    forgotten = (correct[:-1] & ~correct[1:]).sum(axis=0).astype(float)
    forgotten[~correct.any(axis=0)] = np.inf
    return forgotten


def symmetric_label_noise(labels, fraction: float, num_classes: int, seed: int) -> np.ndarray:
    """``labels`` with exactly round(fraction × n) of them moved to another class, drawn uniformly.

    Which samples are flipped is a seeded uniform draw without replacement; each flipped label takes one of
    the ``num_classes - 1`` other classes with equal probability. The input is not modified.
    """
    labels = np.asarray(labels)
    if not 0 <= fraction <= 1:
        raise ValueError(f"the noise fraction must lie between 0 and 1, got {fraction}")
    if num_classes < 2:
        raise ValueError(f"label noise needs at least two classes, got {num_classes}")
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), size=round(fraction * len(labels)), replace=False)
    noisy = labels.copy()
    shift = rng.integers(1, num_classes, size=len(flipped))  # 1..C-1: never the same class
    noisy[flipped] = (labels[flipped] + shift) % num_classes
    return noisy
