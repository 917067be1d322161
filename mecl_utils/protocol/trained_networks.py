"""Trained networks: the backbone and the teachers fine-tuned once, cached by key, and the teachers' scores.

Implements, for Bakhtiarnia, Zhang & Iosifidis (2021), Sec. III and Table I:

- the transfer-learning recipe shared by backbones and teachers (``train_classifier``): the network of
  ``backbones.build_classifier`` (or the smoke profile's tiny CNN) trained with Adam and sparse categorical
  cross-entropy at the Table I batch size (no per-epoch validation pass: nothing reads it, and it does not
  change a weight; it was 40 % of a DenseNet201's first ``fit`` on a CPU, benchmarks/README.md);
- the backbone that the branches are attached to (``trained_backbone``) and the teacher that ranks the
  training samples (``trained_teacher``); the teacher "self", or a teacher named like the backbone
  (InceptionV3 teaching InceptionV3 in Table IV), is the backbone itself: the paper's *self-taught* case, in
  which no second network is trained;
- the difficulty score of each training sample: the teacher's categorical cross-entropy on it
  (``teacher_losses``), computed from its logits in float64, which ``sorting.order`` turns into an ordering.

Every model and loss vector is cached by content (``cache``): the key holds what determines the result
(network, data fingerprint, split indices, recipe, seed) but not the role. The backbone and every
independent teacher train from seeds of their own streams under the profile's root seed (``seeds``). The
Adam optimizer, its learning rate and the epoch counts are ours: the paper does not give its fine-tuning
schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from mecl_utils.cache import (
    array_fingerprint,
    cache_key,
    cache_path,
    cached_arrays,
    cached_model,
    dataset_fingerprint,
)
from mecl_utils.curriculum.sorting import cross_entropy_from_logits
from mecl_utils.networks.backbones import (
    NETWORKS,
    PREDICT_BATCH_SIZE,
    accuracy,
    build_classifier,
    build_for_fit,
    build_tiny_cnn,
    logits,
    mobilenet_weights_path,
    network_spec,
)
from mecl_utils.networks.data import Dataset, Split, Splits
from mecl_utils.protocol.profiles import Profile
from mecl_utils.seeds import stream_seed
from mecl_utils.training.execution import STEPS_PER_EXECUTION, runs_eagerly, steps_per_execution
from mecl_utils.training.prediction_log import fit_logged

__all__ = [
    "CLASSIFIER_VERSION",
    "NetworkKeys",
    "backbone_key",
    "build_network",
    "classifier_parts",
    "evaluate",
    "is_self_taught",
    "network_batch_size",
    "network_epochs",
    "network_keys",
    "teacher_losses",
    "teacher_recipe",
    "teacher_train_logits",
    "train_classifier",
    "trained_backbone",
    "trained_teacher",
    "training_predictions",
]

CLASSIFIER_VERSION = 1  # bump when the training recipe changes, so cached models are retrained
LOSSES_VERSION = 2  # 2: from logits in float64 (1: from float32 probabilities)
TINY_CNN_BATCH_SIZE = 32
# tiny_cnn_wide: the smoke profile's independent teacher, a tiny CNN twice as wide as its backbone
TINY_NETWORKS = {"tiny_cnn": 16, "tiny_cnn_wide": 32}
CLASSIFIER_NETWORKS = (*TINY_NETWORKS, *NETWORKS)


def _check_network(network: str, role: str) -> None:
    if network not in CLASSIFIER_NETWORKS:
        raise ValueError(f"Unknown {role} network {network!r}: choose one of {list(CLASSIFIER_NETWORKS)}.")


def _weights(profile: Profile, network: str) -> tuple[float, str | None]:
    """MobileNet's width multiplier and the ImageNet weights to start from (None: from scratch)."""
    alpha = profile.mobilenet_alpha if network == "mobilenet" else 1.0
    if network in TINY_NETWORKS or not profile.pretrained:
        return alpha, None
    return alpha, mobilenet_weights_path(alpha=alpha) if network == "mobilenet" else "imagenet"


def classifier_parts(
    profile: Profile, network: str, dataset: Dataset, splits: Splits, *, seed: int, epochs: int
) -> dict:
    """The cache-key parts of a classifier: everything that determines its weights, nothing about its role."""
    _check_network(network, "classifier")
    alpha, weights = _weights(profile, network)
    parts = {
        "version": CLASSIFIER_VERSION,
        "network": network,
        "dataset": dataset.name,
        "dataset_fingerprint": dataset_fingerprint(dataset),
        "num_classes": dataset.num_classes,
        # The split indices themselves, not the split seed: they are what the training actually saw.
        "train_index": array_fingerprint(splits.train.index),
        "val_index": array_fingerprint(splits.val.index),
        "n_train": len(splits.train),
        "n_val": len(splits.val),
        "image_size": None if network in TINY_NETWORKS else profile.image_size,
        "alpha": alpha,
        "pretrained": weights is not None,
        "weights": None if weights is None else Path(weights).name,
        "epochs": epochs,
        "learning_rate": profile.backbone_learning_rate,
        "batch_size": network_batch_size(network),
        "seed": seed,
    }
    steps = steps_per_execution(len(splits.train), parts["batch_size"])
    if steps < STEPS_PER_EXECUTION:  # an epoch shorter than one call: unlooped, so other last digits
        parts["steps_per_execution"] = steps
    if runs_eagerly(len(splits.train), parts["batch_size"], epochs):
        parts["run_eagerly"] = True
    return parts


def network_epochs(profile: Profile, epochs: int | None = None) -> int:
    """How many epochs a network of ``profile`` trains: ``epochs``, or the backbone's when None."""
    return profile.backbone_epochs if epochs is None else epochs


def network_batch_size(network: str) -> int:
    """The Table I batch size of ``network`` (the tiny CNNs': ours)."""
    return TINY_CNN_BATCH_SIZE if network in TINY_NETWORKS else network_spec(network).batch_size


def build_network(profile: Profile, network: str, dataset: Dataset) -> keras.Model:
    """``network`` untrained, as ``train_classifier`` builds it for ``profile`` and ``dataset`` (unseeded)."""
    input_shape = tuple(dataset.x_train.shape[1:])
    if network in TINY_NETWORKS:
        return build_tiny_cnn(dataset.num_classes, input_shape=input_shape, width=TINY_NETWORKS[network])
    alpha, weights = _weights(profile, network)
    return build_classifier(
        network,
        dataset.num_classes,
        input_shape=input_shape,
        image_size=profile.image_size,
        weights=weights,
        alpha=alpha,
    )


def train_classifier(
    profile: Profile,
    network: str,
    dataset: Dataset,
    splits: Splits,
    *,
    seed: int,
    epochs: int | None = None,
    verbose: bool = False,
) -> keras.Model:
    """``network`` trained on ``splits.train`` (Sec. III recipe), from the cache when it was trained before.

    ``epochs`` defaults to ``profile.backbone_epochs``. ``verbose`` shows Keras' per-epoch progress bar.
    """
    epochs = network_epochs(profile, epochs)
    parts = classifier_parts(profile, network, dataset, splits, seed=seed, epochs=epochs)

    def train() -> keras.Model:
        model, predictions = _fine_tune(profile, network, dataset, splits, parts, verbose=verbose)
        # The fit's own forward passes logged every training sample's prediction (forgetting events).
        cached_arrays("training_predictions", parts, lambda: {"predictions": predictions})
        return model

    return cached_model("classifier", parts, train)


def _fine_tune(
    profile: Profile, network: str, dataset: Dataset, splits: Splits, parts: dict, *, verbose: bool = False
) -> tuple[keras.Model, np.ndarray]:
    """The Sec. III recipe for the classifier of ``parts``: the network, and its fit's prediction table."""
    keras.utils.set_random_seed(parts["seed"])
    model = build_network(profile, network, dataset)
    eager = parts.get("run_eagerly", False)
    predictions = fit_logged(
        model,
        splits.train.x,
        splits.train.y,
        batch_size=parts["batch_size"],
        epochs=parts["epochs"],
        compile_kwargs=dict(
            optimizer=keras.optimizers.Adam(profile.backbone_learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            # Several steps per call of the compiled function: the same weights to the last bit, and up to
            # 2x faster fine-tuning of the book backbone on a 2-core CPU (benchmarks/README.md).
            steps_per_execution=steps_per_execution(len(splits.train.y), parts["batch_size"]),
            run_eagerly=eager,
        ),
        verbose=1 if verbose else 0,
        # The symbolic build spares a traced step its second tracing; an eager step builds what it needs.
        before_fit=None if eager else lambda logged: build_for_fit(logged, (splits.train.x, splits.train.y)),
    )
    # Returned uncompiled, as the cache reads it back: a compiled model's predict function runs
    # STEPS_PER_EXECUTION copies of the network in one graph, tens of seconds of tracing on a CPU.
    return keras.Model(model.inputs, model.output, name=model.name), predictions


def training_predictions(
    profile: Profile, network: str, dataset: Dataset, splits: Splits, *, seed: int, epochs: int | None = None
) -> np.ndarray:
    """(epochs, training samples): the class ``train_classifier`` predicted for each training sample in each
    epoch of its fine-tuning, logged by the fit itself (``prediction_log``).

    A network cached before the log existed is fine-tuned again by the same recipe for its log, and the
    cached network is left as it is. The same seeds give the same weights to the last bit in the same
    setting (tested), but another thread count rounds sums differently, and the log is then that of
    another run of the recipe, not of the cached network. The difference is not small: the book backbone
    fine-tuned again in a notebook kernel (two threads) rather than a one-thread worker predicted a
    different class for 20-25 % of the training images in each epoch, and its forgetting counts had a rank
    correlation of 0.63 with the worker's (benchmarks/README.md, session 41).
    """
    parts = classifier_parts(
        profile, network, dataset, splits, seed=seed, epochs=network_epochs(profile, epochs)
    )
    if not cache_path("classifier", cache_key(parts), ".keras").is_file():
        train_classifier(profile, network, dataset, splits, seed=seed, epochs=epochs)  # logs as it trains

    def compute() -> dict[str, np.ndarray]:  # a network cached before the log existed: fine-tuned again
        return {"predictions": _fine_tune(profile, network, dataset, splits, parts)[1]}

    return cached_arrays("training_predictions", parts, compute)["predictions"]


def trained_backbone(
    profile: Profile, network: str, dataset: Dataset, splits: Splits, *, seed: int, verbose: bool = False
) -> keras.Model:
    """The backbone the early exits attach to, trained for ``profile.backbone_epochs``.

    ``seed`` is the root seed (``profile.seed``); the backbone trains from its own stream of it.
    """
    network, network_seed, epochs = teacher_recipe(profile, "self", network, seed)
    return train_classifier(
        profile, network, dataset, splits, seed=network_seed, epochs=epochs, verbose=verbose
    )


def backbone_key(profile: Profile, network: str, dataset: Dataset, splits: Splits, *, seed: int) -> str:
    """The cache key of ``trained_backbone(profile, network, dataset, splits, seed=seed)`` (no training)."""
    return network_keys(profile, "self", network, dataset, splits, seed=seed).key


def is_self_taught(teacher: str, backbone_network: str) -> bool:
    """Whether ``teacher`` is the backbone itself: "self", or the backbone's own network by name."""
    return teacher in ("self", backbone_network)


def teacher_recipe(profile: Profile, teacher: str, backbone_network: str, seed: int) -> tuple[str, int, int]:
    """(network, training seed, epochs) that train ``teacher``; a self-taught teacher is the backbone.

    ``seed`` is the root seed. The backbone and each independent teacher have their own seed stream.
    """
    if is_self_taught(teacher, backbone_network):
        return backbone_network, stream_seed(seed, "network", "backbone"), profile.backbone_epochs
    _check_network(teacher, "teacher")
    return teacher, stream_seed(seed, "network", "teacher", teacher), profile.teacher_epochs


def trained_teacher(
    profile: Profile,
    teacher: str,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    *,
    seed: int,
    verbose: bool = False,
) -> keras.Model:
    """The teacher network: the backbone itself when self-taught, else ``teacher`` trained independently."""
    network, teacher_seed, epochs = teacher_recipe(profile, teacher, backbone_network, seed)
    return train_classifier(
        profile, network, dataset, splits, seed=teacher_seed, epochs=epochs, verbose=verbose
    )


def teacher_losses(
    profile: Profile,
    teacher: str,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    *,
    seed: int,
    verbose: bool = False,
    trained: keras.Model | None = None,
) -> np.ndarray:
    """Per-sample cross-entropy of the teacher on ``splits.train``, in its row order (difficulty scores).

    Computed from the teacher's logits in float64 (``sorting.cross_entropy_from_logits``). ``trained``: the
    network ``trained_teacher`` gives for the same arguments, when the caller holds it already; else it is
    trained or read from the cache (reading a large network back costs seconds a network).
    """
    parts = network_keys(profile, teacher, backbone_network, dataset, splits, seed=seed).losses_parts

    def compute() -> dict[str, np.ndarray]:
        train_logits = teacher_train_logits(
            profile, teacher, backbone_network, dataset, splits, seed=seed, verbose=verbose, trained=trained
        )
        return {"losses": cross_entropy_from_logits(train_logits, splits.train.y)}

    return cached_arrays("teacher_losses", parts, compute)["losses"]


def teacher_train_logits(
    profile: Profile,
    teacher: str,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    *,
    seed: int,
    verbose: bool = False,
    trained: keras.Model | None = None,
) -> np.ndarray:
    """The teacher's float64 logits on ``splits.train``, from ``trained`` or the network ``trained_teacher``
    gives (trained, or read from the cache): what its losses, and a noisy label's, are computed from."""
    if trained is None:
        trained = trained_teacher(
            profile, teacher, backbone_network, dataset, splits, seed=seed, verbose=verbose
        )
    return logits(trained, splits.train.x)


@dataclass(frozen=True, eq=False)
class NetworkKeys:
    """A case's network in the cache: the one ``teacher`` names ("self": the backbone) and its scores."""

    network: str
    seed: int  # its training seed, from its own stream of the root seed
    epochs: int
    parts: dict  # the classifier's cache-key parts (``classifier_parts``)
    losses_parts: dict  # the cache-key parts of its losses on the training split (``teacher_losses``)

    @property
    def key(self) -> str:
        """The classifier's cache key (``train_classifier``'s entry)."""
        return cache_key(self.parts)

    @property
    def losses_key(self) -> str:
        """The cache key of its losses: what a run's identity holds of its teacher."""
        return cache_key(self.losses_parts)


def network_keys(
    profile: Profile, teacher: str, backbone_network: str, dataset: Dataset, splits: Splits, *, seed: int
) -> NetworkKeys:
    """The identity of the network that trains ``teacher`` for a case of ``backbone_network`` (no training).

    ``seed`` is the root seed (``teacher_recipe``). Every cache key of a case's networks is built here.
    """
    network, network_seed, epochs = teacher_recipe(profile, teacher, backbone_network, seed)
    parts = classifier_parts(profile, network, dataset, splits, seed=network_seed, epochs=epochs)
    losses = {
        "version": LOSSES_VERSION,
        "teacher_network": network,
        "teacher_classifier": cache_key(parts),
        "train_index": array_fingerprint(splits.train.index),
    }
    return NetworkKeys(network, network_seed, epochs, parts, losses)


def evaluate(model: keras.Model, split: Split, *, batch_size: int = PREDICT_BATCH_SIZE) -> float:
    """Top-1 accuracy of ``model`` (a softmax classifier) on ``split``, in inference mode."""
    return accuracy(model, split.x, split.y, batch_size=batch_size)
