"""Training one early-exit branch, classifier-wise (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. II-A and III).

The backbone is frozen, so only the branch learns. Because the backbone never changes, its activations at the
branch layer are computed once (``features``) and the branch trains on those arrays: the sampler's indices
pick rows of the feature array exactly as they would pick images. ``naive`` mode instead runs the frozen
backbone inside the training graph on the images, the straightforward implementation; it serves as a check
(same initial weights, same batches, accuracies within noise) and as the benchmark's baseline.

One run trains a branch with one method (vanilla, curriculum, anti, random), one optimizer and learning rate
(reduced on a plateau of validation accuracy, Sec. III) and, unless vanilla, one pacing function over one
teacher's ordering. The branch's initial weights depend only on ``init_seed``: the four methods of one
repetition start from identical weights, as in the paper. Its dropout masks depend only on
``dropout_seed``: Keras 3 gives each Dropout layer a seed state when the layer is built, which would tie the
masks to the initial weights' seed, so ``seed_dropout`` sets those states afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np

from mecl_utils.curriculum.rows import LazyRows, array_batches
from mecl_utils.curriculum.sampler import CurriculumSampler, curriculum_dataset
from mecl_utils.networks.backbones import build_for_fit, copy_variables, reset_optimizer, top1_accuracy
from mecl_utils.networks.branches import build_branch
from mecl_utils.seeds import stream_seed
from mecl_utils.training.distillation import Distillation, label_accuracy

__all__ = [
    "TRAINING_VERSION",
    "BranchRun",
    "BranchTrainingResult",
    "initial_branch",
    "make_optimizer",
    "seed_dropout",
    "train_branch",
]

# Part of every run's id (runs.run_identity): bump it when a change alters what a run trains, so
# stored results of the old engine are not mixed with new ones. 2: epochs of exactly one pass of batches.
# 3: dropout seeded by its own stream, losses from logits with a seeded tie-break, vanilla through the paced
# sampler, search seeds disjoint from the repetitions'. 4: repetition runs keep their branch outputs
# (branch_runs.branch_outputs), so runs stored without them are trained again, to the same weights.
# 5: the run identity holds the sampler's class balance for vanilla too, and a reported run's hparam split.
TRAINING_VERSION = 5


@dataclass(frozen=True)
class BranchRun:
    """How one branch is trained: everything but the data and the sampler."""

    optimizer: str  # "sgd" or "adam"
    learning_rate: float
    epochs: int
    plateau_patience: int
    plateau_factor: float
    init_seed: int  # fixes the branch's initial weights (shared by the four methods of a repetition)
    dropout_seed: int  # fixes the dropout masks during training (``seed_dropout``)


@dataclass(frozen=True)
class BranchTrainingResult:
    accuracy: float  # on the evaluation split, with the final weights
    val_accuracy: tuple[float, ...]  # per epoch
    train_loss: tuple[float, ...]  # per epoch
    learning_rate: tuple[float, ...]  # per epoch, after reduce-on-plateau
    steps: tuple[int, ...]  # optimizer steps taken by the end of each epoch
    seconds: float  # the whole fit
    epoch_seconds: tuple[float, ...]  # per epoch (the first includes tracing the training step)
    probabilities: dict[str, np.ndarray] | None = None  # the final branch's outputs on the ``predict`` inputs


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """Sec. III compares SGD and Adam; SGD is plain (no momentum), as the paper states no more."""
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; valid optimizers: sgd, adam")


def initial_branch(feature_shape: tuple[int, ...], num_classes: int, init_seed: int) -> keras.Model:
    """The Fig. 7 branch with initial weights fixed by ``init_seed`` alone."""
    keras.utils.set_random_seed(init_seed)
    return build_branch(tuple(feature_shape), num_classes)


def seed_dropout(model: keras.Model, seed: int) -> int:
    """Reset the seed state of every seeded layer of ``model`` (its Dropout layers) from ``seed`` alone.

    Returns how many seed generators were set. Layer i gets its own stream, so two Dropout layers never
    draw the same mask.
    """
    generators = [
        layer.seed_generator
        for layer in _all_layers(model)
        if isinstance(getattr(layer, "seed_generator", None), keras.random.SeedGenerator)
    ]
    for index, generator in enumerate(generators):
        state = [stream_seed(seed, "dropout layer", index), 0]
        generator.state.assign(keras.ops.convert_to_tensor(state, dtype=generator.state.dtype))
    return len(generators)


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def _compile(
    model: keras.Model, run: BranchRun, steps_per_execution: int, distillation: Distillation | None = None
) -> None:
    model.compile(
        optimizer=make_optimizer(run.optimizer, run.learning_rate),
        loss="sparse_categorical_crossentropy" if distillation is None else distillation.loss(),
        metrics=["accuracy" if distillation is None else label_accuracy()],
        # One call of the compiled train function runs a whole epoch: the branch's steps are short, so a
        # per-call overhead would otherwise dominate (benchmarks/README.md). It must be the epoch, or a
        # divisor of it: Keras runs every call to its full count, so 16 steps a call made 320-batch "epochs"
        # of a 313-batch epoch, moving each validation and learning-rate decision.
        steps_per_execution=steps_per_execution,
    )


# Compiled branches kept between the runs of this process, by everything their traced functions depend on.
# A run that finds one resets it to its own initial state instead of tracing Keras' train function again:
# 1-2 s of a 2-epoch run on one thread (benchmarks/README.md).
_COMPILED: dict[tuple, keras.Model] = {}
_COMPILED_LIMIT = 4


def _compiled_branch(
    run: BranchRun,
    feature_shape: tuple[int, ...],
    num_classes: int,
    steps_per_execution: int,
    distillation: Distillation | None = None,
) -> keras.Model:
    """A compiled branch in exactly the state a fresh ``initial_branch`` + ``_compile`` would be in."""
    fresh = initial_branch(feature_shape, num_classes, run.init_seed)
    key = (tuple(feature_shape), num_classes, run.optimizer, steps_per_execution, distillation)
    model = _COMPILED.get(key)
    if model is None:
        _compile(fresh, run, steps_per_execution, distillation)
        if len(_COMPILED) >= _COMPILED_LIMIT:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = fresh
        return fresh
    copy_variables(model, fresh)  # train_branch then reseeds dropout
    reset_optimizer(model.optimizer, run.learning_rate)
    return model


def train_branch(
    run: BranchRun,
    sampler: CurriculumSampler,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    evaluate: tuple[np.ndarray, np.ndarray],
    *,
    num_classes: int,
    frozen_backbone: keras.Model | None = None,
    predict: dict[str, np.ndarray] | None = None,
    distillation: Distillation | None = None,
    verbose: int = 0,
) -> BranchTrainingResult:
    """Train a fresh branch on ``train`` with ``sampler``'s batches; report accuracy on ``evaluate``.

    ``train``/``val``/``evaluate`` are (inputs, labels): features of the branch layer (arrays, or
    ``rows.LazyRows`` such as ``feature_shards.ShardedFeatures`` on disk), or images when ``frozen_backbone``
    (a model from images to that layer's features, ``feature_modes.cut_backbone``) is given: the backbone
    mode.
    ``predict`` names inputs whose softmax outputs under the final weights are returned (``probabilities``),
    what an exit policy needs at inference. With ``distillation``, the branch also learns from the final
    exit: ``train`` and ``val`` then hold packed targets (``distillation.pack_targets``), ``evaluate`` labels.
    """
    x_train, y_train = train
    if sampler.num_samples != len(x_train):
        raise ValueError(f"the sampler orders {sampler.num_samples} samples but train has {len(x_train)}")
    if any((np.ndim(y) == 2) != (distillation is not None) for y in (y_train, val[1])):
        raise ValueError(
            "train and val targets must be packed [label, final-exit logits] rows "
            "(distillation.pack_targets) exactly when training with distillation, and plain labels otherwise"
        )
    if frozen_backbone is None:
        model = _compiled_branch(run, x_train.shape[1:], num_classes, sampler.batches_per_epoch, distillation)
    else:
        frozen_backbone.trainable = False
        images = keras.Input(x_train.shape[1:])
        branch = initial_branch(tuple(frozen_backbone.output.shape[1:]), num_classes, run.init_seed)
        model = keras.Model(images, branch(frozen_backbone(images, training=False)))
        _compile(model, run, sampler.batches_per_epoch, distillation)
    seed_dropout(model, run.dropout_seed)
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_accuracy", mode="max", factor=run.plateau_factor, patience=run.plateau_patience
    )
    log = _EpochLog()
    start = time.perf_counter()
    batches = curriculum_dataset(x_train, y_train, sampler, epochs=run.epochs)
    build_for_fit(model, batches.element_spec)
    history = model.fit(
        batches,
        validation_data=_labelled(*val),
        epochs=run.epochs,
        steps_per_epoch=sampler.batches_per_epoch,
        shuffle=False,  # the sampler already decides the order
        callbacks=[plateau, log],
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    probabilities = None if predict is None else {name: _predict(model, x) for name, x in predict.items()}
    # A repetition predicts its evaluation (test) split anyway: read the accuracy off that, not a second pass.
    reused = next((probabilities[name] for name, x in (predict or {}).items() if x is evaluate[0]), None)
    evaluated = reused if reused is not None else _predict(model, evaluate[0])
    return BranchTrainingResult(
        accuracy=top1_accuracy(evaluated, evaluate[1]),
        val_accuracy=tuple(float(v) for v in history.history["val_accuracy"]),
        train_loss=tuple(float(v) for v in history.history["loss"]),
        learning_rate=tuple(log.learning_rates),
        steps=tuple(log.steps),
        seconds=seconds,
        epoch_seconds=tuple(log.seconds),
        probabilities=probabilities,
    )


# The batch sizes arrays get (Keras' default for validation, ours for prediction), used for features on
# disk too, so that both compute alike.
VALIDATION_BATCH = 32
PREDICT_BATCH = 512


def _labelled(x, y):
    """Validation data for ``model.fit``: consecutive batches of ``VALIDATION_BATCH`` rows, as tf.data
    (``rows.array_batches``: Keras' own handling of arrays costs ~12 ms at every epoch's pass)."""
    if isinstance(x, LazyRows):
        return x.dataset(y, batch_size=VALIDATION_BATCH)
    return array_batches((x, y), VALIDATION_BATCH)


def _predict(model: keras.Model, x) -> np.ndarray:
    if isinstance(x, LazyRows):  # read from disk: the pipeline sets the batch size
        return model.predict(x.dataset(batch_size=PREDICT_BATCH), verbose=0)
    return model.predict(array_batches(x, PREDICT_BATCH), verbose=0)


class _EpochLog(keras.callbacks.Callback):
    """After each epoch: the learning rate (reduce-on-plateau may lower it), steps so far, wall time."""

    def __init__(self):
        super().__init__()
        self.learning_rates: list[float] = []
        self.steps: list[int] = []
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        self.learning_rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        self.steps.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))
