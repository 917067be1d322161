"""Training conditions beyond the paper's one: a shorter budget, noisy labels, less data (Wu et al., 2021).

The paper trains every branch for its whole schedule on the full training split with clean labels. Wu, Dyer
& Neyshabur ("When Do Curricula Work?", ICLR 2021) found orderings matter where that is not so: a short
training budget and noisy labels. A ``Condition`` changes one run's training data or schedule, never what
it is validated or tested on:

- ``budget``: a fraction of the profile's branch epochs (rounded, at least one). The pacing function's step
  length shrinks with the run's number of batches, so it reaches the whole training set at the same
  fraction of the run as under the full budget (``scaled_pacing``).
- ``label_noise``: that fraction of the training labels moves to another class, drawn uniformly
  (``difficulty.symmetric_label_noise``: exactly round(fraction × n) of them). The validation,
  hyper-parameter and test labels stay clean. A teacher scores the label the branch trains on, the noisy
  one, from its logits on the training split (``noisy_losses``).
- ``train_fraction``: a class-stratified subset of the training split (``train_rows``).

The subset and the flipped labels come from seed streams of their own, per data set and value, so every
method and repetition of a condition trains on the same data and pairs as in Table IV. The default condition
is the paper's: it adds nothing to a run's identity (``identity``), so runs stored before conditions existed
keep their ids.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from mecl_utils.curriculum.difficulty import symmetric_label_noise
from mecl_utils.curriculum.pacing import Pacing
from mecl_utils.curriculum.sorting import cross_entropy_from_logits
from mecl_utils.seeds import stream_seed

__all__ = [
    "PAPER_CONDITION",
    "Condition",
    "condition_epochs",
    "noisy_losses",
    "parse_condition",
    "scaled_pacing",
    "train_labels",
    "train_rows",
]

# The pacing fields counted in batches: stretched or shrunk with the number of batches a run draws.
_BATCH_FIELDS = ("delta", "t_full")


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _differs(condition: Condition, field: dataclasses.Field) -> bool:
    return getattr(condition, field.name) != field.default


@dataclass(frozen=True)
class Condition:
    """How a run's training departs from the paper's: 1, 0 and 1 are the paper's own values."""

    budget: float = 1.0  # fraction of the profile's branch epochs
    label_noise: float = 0.0  # fraction of training labels moved to another class
    train_fraction: float = 1.0  # fraction of the training split, stratified by class

    def __post_init__(self):
        for name in ("budget", "train_fraction"):
            value = getattr(self, name)
            if not _number(value) or not 0 < value <= 1:
                raise ValueError(f"{name} must be a fraction in (0, 1] (1: the paper's), got {value!r}")
        if not _number(self.label_noise) or not 0 <= self.label_noise < 1:
            raise ValueError(
                f"label_noise must be a fraction in [0, 1) (0: clean labels), got {self.label_noise!r}"
            )

    @property
    def is_paper(self) -> bool:
        return self == PAPER_CONDITION

    @property
    def label(self) -> str:
        """ "paper", or the settings that differ from it, e.g. "budget 0.25, label_noise 0.2"."""
        changed = [
            f"{f.name} {getattr(self, f.name):g}" for f in dataclasses.fields(self) if _differs(self, f)
        ]
        return ", ".join(changed) or "paper"

    def identity(self) -> dict:
        """What a run's identity holds of the condition: nothing for the paper's, else every setting."""
        return {} if self.is_paper else {"condition": dataclasses.asdict(self)}


PAPER_CONDITION = Condition()


def parse_condition(text: str) -> Condition:
    """``"budget=0.25,label_noise=0.2"`` or its ``label`` ``"budget 0.25, label_noise 0.2"`` → Condition;
    ``"paper"`` → the paper's. Unknown names are refused."""
    text = text.strip()
    if text in ("", "paper"):
        return PAPER_CONDITION
    valid = [f.name for f in dataclasses.fields(Condition)]
    values = {}
    for item in text.split(","):
        name, equals, value = item.strip().replace("=", " ", 1).partition(" ")
        if not equals or name not in valid:
            raise ValueError(
                f"cannot read condition {item.strip()!r} of {text!r}: write NAME=FRACTION pairs separated by "
                f"commas, NAME one of {', '.join(valid)} (e.g. budget=0.25,label_noise=0.2), or 'paper'"
            )
        try:
            values[name] = float(value)
        except ValueError:
            raise ValueError(f"condition {name} must be a number, got {value.strip()!r}") from None
    return Condition(**values)


def condition_epochs(epochs: int, condition: Condition) -> int:
    """The branch epochs of a run under ``condition``: a ``budget`` fraction of ``epochs``, at least one."""
    return max(1, round(epochs * condition.budget))


def scaled_pacing(pacing: Pacing, factor: float) -> Pacing:
    """``pacing`` with every length counted in batches (δ, t_full) multiplied by ``factor``."""
    if not factor > 0:
        raise ValueError(f"the scale factor must be positive, got {factor}")
    fields = {f.name for f in dataclasses.fields(pacing)}
    return dataclasses.replace(
        pacing, **{n: getattr(pacing, n) * factor for n in _BATCH_FIELDS if n in fields}
    )


def train_rows(labels: np.ndarray, condition: Condition, *, seed: int, dataset: str) -> np.ndarray:
    """The rows of the training split a run under ``condition`` trains on, in split order.

    All of them under the paper's training fraction; else round(fraction × n_c) of each class c, a seeded
    draw from the stream ("condition", "train_fraction", dataset, fraction) of the root ``seed``.
    """
    labels = np.asarray(labels)
    if condition.train_fraction == 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(
        stream_seed(seed, "condition", "train_fraction", dataset, repr(condition.train_fraction))
    )
    kept = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        size = max(1, round(condition.train_fraction * len(members)))
        kept.append(rng.choice(members, size=size, replace=False))
    return np.sort(np.concatenate(kept))


def train_labels(
    labels: np.ndarray, condition: Condition, num_classes: int, *, seed: int, dataset: str
) -> np.ndarray:
    """The training labels a run under ``condition`` learns from (``labels``: those of its ``train_rows``).

    Clean under the paper's noise level; else symmetric noise from the stream ("condition", "label_noise",
    dataset, fraction, training fraction) of the root ``seed``.
    """
    if condition.label_noise == 0:
        return np.asarray(labels)
    noise_seed = stream_seed(
        seed,
        "condition",
        "label_noise",
        dataset,
        repr(condition.label_noise),
        repr(condition.train_fraction),
    )
    return symmetric_label_noise(labels, condition.label_noise, num_classes, noise_seed)


def noisy_losses(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A teacher's per-sample cross-entropy against the (noisy) ``labels`` a branch trains on."""
    return cross_entropy_from_logits(logits, labels)
