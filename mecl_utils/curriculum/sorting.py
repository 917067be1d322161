"""Difficulty scores and orderings: the *sorting function* of curriculum learning.

Bakhtiarnia, Zhang & Iosifidis (2021), Sec. III: a pre-trained *transfer teacher* scores each training sample
by its categorical cross-entropy loss; the lower the loss, the easier the sample. The four training methods of
the paper differ only in the order they hand to the sampler (Fig. 2):

- ``curriculum``: easy → hard (ascending teacher loss);
- ``anti``: hard → easy (anti-curriculum, descending loss);
- ``random``: a seeded random permutation; the pacing function still applies (Hacohen & Weinshall, 2019);
- ``vanilla``: no ordering and no pacing (the sampler draws every batch from the whole data set).

Difficulty scores are computed from the teacher's logits, as a log-softmax in float64
(``cross_entropy_from_logits``): from float32 probabilities every confidently-right sample would score exactly
0, and the easiest block would be ordered by file index. Samples whose losses are still exactly equal (for
instance duplicate images) are put in a seeded random order, the *tie-break*: an ordering is a pure function
of the losses and the seed. Anti-curriculum is the exact reverse of curriculum, ties included.

Optional class balance follows Hacohen & Weinshall's implementation: the ordered data is regrouped so that
each prefix holds every class in proportion. It is off by default, matching the paper's Fig. 2.
"""

from __future__ import annotations

import numpy as np

METHODS = ("vanilla", "curriculum", "anti", "random")

__all__ = [
    "METHODS",
    "balance_classes",
    "cross_entropy",
    "cross_entropy_from_logits",
    "order",
    "tie_fraction",
]


def cross_entropy(probabilities, labels, *, eps: float = 1e-12) -> np.ndarray:
    """Per-sample categorical cross-entropy -log p[label] of predicted class probabilities.

    ``probabilities`` is N×C (rows of a softmax output); ``labels`` are N integer classes or an N×C one-hot
    array. Probabilities are clipped to [eps, 1] so a confident wrong teacher (p ≈ 0) gives a large finite
    loss, never inf or nan.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be an N×C array, got shape {probs.shape}")
    labels = _class_indices(labels, probs.shape)
    if np.any(~np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("probabilities must be finite and non-negative (pass softmax outputs, not logits)")
    picked = probs[np.arange(probs.shape[0]), labels]
    return -np.log(np.clip(picked, eps, 1.0))


def cross_entropy_from_logits(logits, labels) -> np.ndarray:
    """Per-sample cross-entropy logsumexp(z) - z[label] of logits ``z`` (N×C), computed in float64.

    The difficulty score of the paper's teachers (Sec. III), without the rounding of a float32 softmax:
    a sample the teacher gets right with 99.99999 % confidence scores about 1e-7, not 0.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be an N×C array, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain nan or inf: the teacher's training diverged; retrain it")
    labels = _class_indices(labels, z.shape)
    rows = np.arange(z.shape[0])
    top = z.argmax(axis=1)
    shifted = np.exp(z - z[rows, top][:, None])
    shifted[rows, top] = 0.0
    # (z_top - z_label) + log1p(mass of the other classes): a loss of 1e-17 stays 1e-17 instead of
    # vanishing in 1 + 1e-17 = 1 or in z_top + 1e-17 = z_top
    return (z[rows, top] - z[rows, labels]) + np.log1p(shifted.sum(axis=1))


def _class_indices(labels, shape: tuple[int, int]) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2:
        if labels.shape != shape:
            raise ValueError(f"one-hot labels have shape {labels.shape}, scores {shape}")
        labels = labels.argmax(axis=1)
    if labels.shape != (shape[0],):
        raise ValueError(f"expected {shape[0]} labels to match the scores, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= shape[1]):
        raise ValueError(f"labels must lie in [0, {shape[1] - 1}], got {labels.min()}..{labels.max()}")
    return labels


def tie_fraction(losses) -> float:
    """The fraction of samples whose loss exactly equals another sample's (ordered by the tie-break)."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size == 0:
        return 0.0
    _, inverse, counts = np.unique(losses, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inverse] > 1))


def order(method: str, losses=None, *, seed: int = 0, labels=None, balance: bool = False) -> np.ndarray:
    """Indices of the training samples in the order the sampler uses for ``method``.

    ``losses`` are per-sample teacher losses (length N); ``random`` and ``vanilla`` only use their length.
    ``seed`` draws random curriculum's permutation and, for curriculum and anti-curriculum, the order of
    samples with exactly equal losses. Anti-curriculum is curriculum reversed.
    With ``balance=True`` (needs ``labels``) the order is regrouped by :func:`balance_classes`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if losses is None:
        raise ValueError("order() needs the per-sample losses (for random/vanilla, any array of length N)")
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1:
        raise ValueError(f"losses must be a 1-D array with one value per sample, got shape {losses.shape}")
    if method in ("curriculum", "anti") and not np.all(np.isfinite(losses)):
        raise ValueError("losses contain nan or inf; recompute the teacher scores (see cross_entropy)")
    n = losses.shape[0]
    if method in ("curriculum", "anti"):
        tie_break = np.random.default_rng(seed).permutation(n)
        ordered = np.lexsort((tie_break, losses))  # by loss, then by the tie-break
        if method == "anti":
            ordered = ordered[::-1].copy()
    elif method == "random":
        ordered = np.random.default_rng(seed).permutation(n)
    else:
        ordered = np.arange(n)
    if balance:
        if labels is None:
            raise ValueError("balance=True needs the labels of the training samples")
        ordered = balance_classes(ordered, labels)
    return ordered


def balance_classes(ordered, labels) -> np.ndarray:
    """Regroup an ordering so every prefix holds each class in proportion to its size.

    The k-th sample of every class (in the given order) forms group k; groups follow each other, and inside a
    group samples keep their relative order. With equal class sizes this is exactly Hacohen & Weinshall's
    ``balance_order``; with unequal sizes a class's k-th sample is placed at relative rank k / n_class.
    """
    ordered = np.asarray(ordered)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != ordered.shape[0]:
        raise ValueError(
            f"need one label per sample: {ordered.shape[0]} indices, labels shape {labels.shape}"
        )
    ordered_labels = labels[ordered]
    rank_in_class = np.empty(ordered.shape[0], dtype=np.float64)
    for cls in np.unique(ordered_labels):
        members = np.flatnonzero(ordered_labels == cls)
        rank_in_class[members] = np.arange(members.size) / members.size
    position = np.arange(ordered.shape[0])
    return ordered[np.lexsort((position, rank_in_class))]
