"""End-to-end and layer-wise training of a multi-exit network (the paper's Sec. II-A; its Sec. V question).

The paper trains its exits classifier-wise: the backbone is trained alone, then frozen. Sec. II-A names the
two other strategies, and Sec. V asks whether curriculum learning helps them too:

- *end-to-end*: backbone and exits train together on one loss, the final exit's cross-entropy plus each
  early exit's, weighted (``exit_weights``). "equal" weighs every exit 1. "sdn" is Shallow-Deep Networks'
  scheme (Kaya, Hong & Dumitras, 2019): an early exit's weight grows linearly over the epochs from 0.01 to
  its relative depth in the backbone (our reading of their "position"), the final exit weighing 1 throughout;
- *layer-wise*: the network up to and including exit 1 is trained, then frozen; then the part up to and
  including exit 2; and so on to the final exit (``train_layer_wise``). Frozen layers, BatchNormalization's
  moving statistics included, never change again.

Both start from the same point as the classifier-wise backbone (``teachers.build_network``: ImageNet weights
and a fresh head, or a fresh tiny CNN) with fresh Fig. 7 branches, and follow its recipe (Adam, the
backbone's learning rate and epochs, the Table I batch size and frozen layers). The training data arrive
either as shuffled epochs, exactly as ``teachers.train_classifier`` feeds them (``sampler=None``), or through
a curriculum sampler over the whole network's training data (a layer-wise stage restarts its pacing). With
every early-exit weight at 0, end-to-end training is plain backbone training to the last bit: the tests hold
it to that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from .branches import build_branch
from .data import Dataset, Split, Splits
from .models import get_layer, top1_accuracy
from .profiles import Profile
from .sampler import CurriculumSampler, curriculum_dataset
from .teachers import STEPS_PER_EXECUTION, build_network, network_batch_size

__all__ = [
    "WEIGHTINGS",
    "MultiExit",
    "build_multi_exit_network",
    "exit_accuracies",
    "exit_weights",
    "relative_depths",
    "train_end_to_end",
    "train_layer_wise",
]

WEIGHTINGS = ("equal", "sdn")
SDN_START = 0.01  # Kaya et al.'s starting weight of every early exit


@dataclass(frozen=True, eq=False)
class MultiExit:
    """A classifier with branches at ``layers``: ``model`` outputs the branches' softmax, then the final's."""

    model: keras.Model
    classifier: keras.Model
    branches: tuple[keras.Model, ...]
    layers: tuple[str, ...]


def build_multi_exit_network(
    profile: Profile, network: str, dataset: Dataset, layers: Sequence[str], *, seed: int, init_seed: int
) -> MultiExit:
    """``network`` untrained (seeded as ``train_classifier`` seeds it), with branches at ``layers``.

    The branches are built first, from ``init_seed`` (the same initial weights a classifier-wise branch of
    the same repetition gets); then the classifier exactly as ``teachers.train_classifier`` builds it from
    ``seed``, so that everything it draws afterwards (head, dropout masks, shuffling) is what it would draw
    without branches.
    """
    if not layers:
        raise ValueError("a multi-exit network needs at least one branch layer")
    # The shapes come from an unseeded throwaway copy: building it before the seeded ones disturbs nothing.
    probe = build_network(profile, network, dataset)
    shapes = [tuple(get_layer(probe, name).output.shape[1:]) for name in layers]
    del probe
    keras.utils.set_random_seed(init_seed)
    branches = tuple(
        build_branch(shape, dataset.num_classes, name=f"branch{number}")
        for number, shape in enumerate(shapes, start=1)
    )
    keras.utils.set_random_seed(seed)
    classifier = build_network(profile, network, dataset)
    exits = [
        branch(get_layer(classifier, name).output) for branch, name in zip(branches, layers, strict=True)
    ]
    model = keras.Model(classifier.inputs, [*exits, classifier.output], name=f"{classifier.name}_multi_exit")
    return MultiExit(model, classifier, branches, tuple(layers))


def relative_depths(classifier: keras.Model, layers: Sequence[str]) -> tuple[float, ...]:
    """Where each layer sits in the classifier, as a fraction of its layers (Keras' topological order)."""
    names = [layer.name for layer in classifier.layers]
    return tuple((names.index(get_layer(classifier, name).name) + 1) / len(names) for name in layers)


def exit_weights(
    weighting: str | Sequence[float], depths: Sequence[float], epoch: int, epochs: int
) -> tuple[float, ...]:
    """The loss weight of each early exit in epoch ``epoch`` (from 0) of ``epochs``; the final exit's is 1.

    ``weighting``: "equal", "sdn" (module docstring), or one constant weight per early exit.
    """
    if isinstance(weighting, str):
        if weighting == "equal":
            return tuple(1.0 for _ in depths)
        if weighting == "sdn":
            progress = 1.0 if epochs == 1 else epoch / (epochs - 1)
            return tuple(SDN_START + (depth - SDN_START) * progress for depth in depths)
        raise ValueError(f"unknown exit weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}, or numbers")
    weights = tuple(float(w) for w in weighting)
    if len(weights) != len(depths) or any(not w >= 0 for w in weights):
        raise ValueError(f"give one weight >= 0 per early exit ({len(depths)}), got {tuple(weighting)}")
    return weights


class _ExitWeightSchedule(keras.callbacks.Callback):
    """Sets the early exits' loss weights (Keras variables the compiled loss reads) at each epoch's start."""

    def __init__(self, variables, weighting, depths, epochs):
        super().__init__()
        self.variables, self.weighting, self.depths, self.epochs = variables, weighting, depths, epochs
        self.history: list[tuple[float, ...]] = []

    def on_epoch_begin(self, epoch, logs=None):
        weights = exit_weights(self.weighting, self.depths, epoch, self.epochs)
        for variable, weight in zip(self.variables, weights, strict=True):
            variable.assign(weight)
        self.history.append(weights)


class _WeightedCrossEntropy(keras.losses.Loss):
    """Sparse categorical cross-entropy times a weight in a Keras variable (changeable between epochs)."""

    def __init__(self, weight: keras.Variable | None, name: str):
        super().__init__(name=name)
        self.weight = weight

    def call(self, y_true, y_pred):
        loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        return loss if self.weight is None else self.weight * loss


def _fit(
    model: keras.Model,
    losses: list,
    profile: Profile,
    network: str,
    splits: Splits,
    sampler: CurriculumSampler | None,
    epochs: int,
    callbacks: list,
    verbose: int,
):
    """Compile and fit as ``teachers.train_classifier`` does; every output reads the same labels."""
    outputs = len(model.outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(profile.backbone_learning_rate),
        loss=losses if outputs > 1 else losses[0],
        metrics=[["accuracy"]] * outputs if outputs > 1 else ["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION if sampler is None else sampler.batches_per_epoch,
    )

    def targets(y):
        return tuple([y] * outputs) if outputs > 1 else y

    validation = (splits.val.x, targets(splits.val.y))
    if sampler is None:
        return model.fit(
            splits.train.x,
            targets(splits.train.y),
            batch_size=network_batch_size(network),
            epochs=epochs,
            validation_data=validation,
            shuffle=True,
            callbacks=callbacks,
            verbose=verbose,
        )
    if sampler.num_samples != len(splits.train):
        raise ValueError(
            f"the sampler orders {sampler.num_samples} samples but train has {len(splits.train)}"
        )
    batches = curriculum_dataset(splits.train.x, splits.train.y, sampler, epochs=epochs)
    return model.fit(
        batches.map(lambda x, y: (x, targets(y))),
        validation_data=validation,
        epochs=epochs,
        steps_per_epoch=sampler.batches_per_epoch,
        shuffle=False,
        callbacks=callbacks,
        verbose=verbose,
    )


def train_end_to_end(
    profile: Profile,
    network: str,
    dataset: Dataset,
    splits: Splits,
    layers: Sequence[str],
    *,
    weighting: str | Sequence[float],
    seed: int,
    init_seed: int,
    sampler: CurriculumSampler | None = None,
    epochs: int | None = None,
    verbose: int = 0,
) -> tuple[MultiExit, list[tuple[float, ...]]]:
    """Backbone and branches trained together on the weighted sum of every exit's cross-entropy.

    Returns the trained network and the early exits' weights epoch by epoch. ``epochs`` defaults to the
    backbone's.
    """
    epochs = profile.backbone_epochs if epochs is None else epochs
    multi = build_multi_exit_network(profile, network, dataset, layers, seed=seed, init_seed=init_seed)
    depths = relative_depths(multi.classifier, layers)
    exit_weights(weighting, depths, 0, epochs)  # a bad weighting fails before any training
    variables = [
        keras.Variable(0.0, trainable=False, name=f"exit{n}_weight") for n in range(1, len(layers) + 1)
    ]
    losses = [_WeightedCrossEntropy(v, f"exit{n}") for n, v in enumerate(variables, start=1)]
    schedule = _ExitWeightSchedule(variables, weighting, depths, epochs)
    losses.append(_WeightedCrossEntropy(None, "final"))
    _fit(multi.model, losses, profile, network, splits, sampler, epochs, [schedule], verbose)
    return multi, schedule.history


def train_layer_wise(
    profile: Profile,
    network: str,
    dataset: Dataset,
    splits: Splits,
    layers: Sequence[str],
    *,
    seed: int,
    init_seed: int,
    sampler: CurriculumSampler | None = None,
    epochs: int | None = None,
    on_stage: Callable[[int, MultiExit], None] | None = None,
    verbose: int = 0,
) -> MultiExit:
    """Sec. II-A's layer-wise training: stage k trains the part up to exit k, which is then frozen.

    Stage k (1 ≤ k ≤ len(layers) + 1, the last being the final exit) trains, for ``epochs`` (default: the
    backbone's), the classifier's layers after the previous exit's layer up to exit k's, with branch k, on
    branch k's cross-entropy alone. Layers the Table I rule freezes stay frozen. ``on_stage(k, network)`` is
    called after each stage.
    """
    epochs = profile.backbone_epochs if epochs is None else epochs
    multi = build_multi_exit_network(profile, network, dataset, layers, seed=seed, init_seed=init_seed)
    classifier = multi.classifier
    trainable = {layer.name: layer.trainable for layer in classifier.layers}
    names = [layer.name for layer in classifier.layers]
    ends = [names.index(name) for name in layers] + [len(names) - 1]
    for branch in multi.branches:
        branch.trainable = False
    start = 0
    for stage, end in enumerate(ends, start=1):
        for index, layer in enumerate(classifier.layers):
            layer.trainable = trainable[layer.name] and start <= index <= end
        if stage <= len(layers):
            branch = multi.branches[stage - 1]
            branch.trainable = True
            model = keras.Model(classifier.inputs, branch(get_layer(classifier, layers[stage - 1]).output))
        else:
            branch, model = None, classifier
        loss = _WeightedCrossEntropy(None, f"exit{stage}" if branch else "final")
        _fit(model, [loss], profile, network, splits, sampler, epochs, [], verbose)
        if branch is not None:
            branch.trainable = False
        if on_stage is not None:
            on_stage(stage, multi)
        start = end + 1
    for layer in classifier.layers:  # as the Table I rule left them, for whoever trains it further
        layer.trainable = trainable[layer.name]
    return multi


def exit_accuracies(
    multi: MultiExit, split: Split, *, batch_size: int = 256
) -> tuple[tuple[np.ndarray, ...], tuple[float, ...]]:
    """Each exit's softmax outputs on ``split`` (branches first, then the final exit) and their accuracies."""
    outputs = multi.model.predict(split.x, batch_size=batch_size, verbose=0)
    return tuple(np.asarray(o) for o in outputs), tuple(top1_accuracy(o, split.y) for o in outputs)
