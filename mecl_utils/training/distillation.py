"""Distillation from the final exit into a classifier-wise branch (Phuong & Lampert, 2019; the paper's [11]).

The paper's Sec. V asks whether curriculum learning combines with distillation-based training of the exits.
Phuong & Lampert train every exit to match a later, more accurate exit's softened outputs as well as the
labels. In classifier-wise training the backbone is fixed, so its final exit is a fixed teacher: its logits
on the training and validation images are computed once (``final_exit_logits``, cached) and a branch then
trains on the cached features at the cost of an ordinary branch run, with

    L = (1 − C) · CE(y, p_b) + C · T² · KL(softmax(z_f / T) ‖ softmax(z_b / T)),

where p_b = softmax(z_b) is the branch's output, z_f the final exit's logits, C the distillation weight and T
the temperature (``Distillation``). T² keeps the soft term's gradients on the scale of the hard term's
(Hinton et al., 2015) when the logits are small next to T; when they are not (a confident final exit),
the soft term's gradient grows about as T. We use a fixed T = 2 and C = 0.5, our choice: Phuong & Lampert
adapt T during training, which would be one more schedule to search, and the distilled runs reuse the
learning rate searched for plain branches. At T = 4 SGD at the smoke profile's searched rate of 0.1 diverged
(a branch at 24 % test accuracy against 96 % without distillation), while T = 2 trained (96 %).

The branch outputs probabilities (``branches.build_branch``), so its logits are recovered as log p_b, which
equals z_b up to a per-row constant that every softmax ignores. For the hard term p_b is clipped at 1e-7, as
Keras' cross-entropy does; for the soft term only at 1e-37: a clip at 1e-7 would cap the student's logit
gaps at 16, while a confident final exit's reach tens. Labels and teacher logits travel together as one
float32 target row [label, z_f] (``pack_targets``), so the sampler's ``tf.data`` pipeline gathers them with
the features unchanged; ``label_accuracy`` reads the label back out, under the name ``accuracy`` that
reduce-on-plateau monitors.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from mecl_utils.cache import array_fingerprint, cached_arrays
from mecl_utils.networks.backbones import logits

__all__ = [
    "BOOK_DISTILLATION",
    "Distillation",
    "DistillationLoss",
    "final_exit_logits",
    "label_accuracy",
    "pack_targets",
]

EPSILON = 1e-7  # Keras' backend epsilon, the clip of its probability cross-entropy (the hard term's)
TINY = 1e-37  # near float32's smallest normal number: the soft term's clip (``DistillationLoss.call``)
FINAL_LOGITS_VERSION = 1


@dataclass(frozen=True)
class Distillation:
    """How much a branch learns from the final exit (``weight``, C) and how softened (``temperature``, T)."""

    weight: float
    temperature: float

    def __post_init__(self):
        for name in ("weight", "temperature"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"distillation {name} must be a number, got {value!r}")
        if not 0 <= self.weight <= 1:
            raise ValueError(f"distillation weight C must be in [0, 1], got {self.weight}")
        if not self.temperature > 0:
            raise ValueError(f"distillation temperature T must be positive, got {self.temperature}")

    def loss(self) -> DistillationLoss:
        return DistillationLoss(self.weight, self.temperature)


BOOK_DISTILLATION = Distillation(weight=0.5, temperature=2.0)  # ours (module docstring)


@keras.saving.register_keras_serializable(package="mecl_utils")
class DistillationLoss(keras.losses.Loss):
    """(1 − C)·CE + C·T²·KL on packed targets [label, teacher logits] and predicted probabilities."""

    def __init__(self, weight: float, temperature: float, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight = float(weight)
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true[:, 0], "int32")
        teacher_logits = ops.cast(y_true[:, 1:], y_pred.dtype)
        log_p = ops.log(ops.clip(y_pred, EPSILON, 1.0))
        hard = -ops.squeeze(ops.take_along_axis(log_p, labels[:, None], axis=1), axis=1)
        # The soft term needs the branch's logits far below log(1e-7): a confident final exit's softened
        # outputs span e^7 and more at T = 4, which a clip at 1e-7 (e^-16 / T = e^-4) cannot follow.
        student_logits = ops.log(ops.clip(y_pred, TINY, 1.0))
        student = ops.log_softmax(student_logits / self.temperature, axis=-1)
        teacher = ops.log_softmax(teacher_logits / self.temperature, axis=-1)
        soft = ops.sum(ops.exp(teacher) * (teacher - student), axis=-1)
        return (1 - self.weight) * hard + self.weight * self.temperature**2 * soft

    def get_config(self):
        return {"name": self.name, "weight": self.weight, "temperature": self.temperature}


def _label_accuracy(y_true, y_pred):
    labels = ops.cast(y_true[:, 0], "int32")
    return ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels), "float32")


def label_accuracy() -> keras.metrics.Metric:
    """Top-1 accuracy against the label column of packed targets, named like Keras' own ``accuracy``."""
    return keras.metrics.MeanMetricWrapper(_label_accuracy, name="accuracy")


def pack_targets(labels: np.ndarray, teacher_logits: np.ndarray) -> np.ndarray:
    """One float32 row [label, z_f(1), ..., z_f(K)] per sample: what ``DistillationLoss`` reads."""
    labels = np.asarray(labels)
    teacher_logits = np.asarray(teacher_logits)
    if teacher_logits.ndim != 2 or len(teacher_logits) != len(labels):
        raise ValueError(
            f"teacher logits must be one row per label, got shape {teacher_logits.shape} for {len(labels)} "
            "labels: pass final_exit_logits(...) of the same split"
        )
    if labels.size and not (0 <= labels.min() and labels.max() < teacher_logits.shape[1]):
        raise ValueError(f"labels must lie in 0..{teacher_logits.shape[1] - 1} (the teacher's classes)")
    return np.concatenate([labels.astype(np.float32)[:, None], teacher_logits.astype(np.float32)], axis=1)


def final_exit_logits(backbone: keras.Model, backbone_key: str, splits: dict) -> dict[str, np.ndarray]:
    """The backbone's final-exit logits (float64, ``backbones.logits``) on each named split, cached.

    ``splits`` maps a name to a ``data.Split``; the cache key is the backbone's key and each split's index,
    so the logits are computed once per backbone however many branch runs read them.
    """
    parts = {
        "version": FINAL_LOGITS_VERSION,
        "backbone": backbone_key,
        "splits": {name: array_fingerprint(split.index) for name, split in sorted(splits.items())},
    }
    return cached_arrays(
        "final_logits", parts, lambda: {name: logits(backbone, split.x) for name, split in splits.items()}
    )
