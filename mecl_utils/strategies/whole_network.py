"""End-to-end and layer-wise training of a multi-exit network (the paper's Sec. II-A; its Sec. V question).

The paper trains its exits classifier-wise: the backbone is trained alone, then frozen. Sec. II-A names the
two other strategies, and Sec. V asks whether curriculum learning helps them too:

- *end-to-end*: backbone and exits train together on one loss, the final exit's cross-entropy plus each
  early exit's, weighted (``exit_weights``). "equal" weighs every exit 1. "sdn" is Shallow-Deep Networks'
  schedule (Kaya, Hong & Dumitras, 2019, as their training code computes it): in epoch e = 1, ..., E early
  exit i weighs min(C_i, 0.01 + e·C_i/E), where C_i is the share of the classifier's compute done before
  exit i (``compute_shares``: multiply-accumulates, ``costs``); the final exit weighs 1 throughout;
- *layer-wise*: the network up to and including exit 1 is trained, then frozen; then the part up to and
  including exit 2; and so on to the final exit (``train_layer_wise``). Frozen layers, BatchNormalization's
  moving statistics included, never change again.

Both start from the same point as the classifier-wise backbone (``trained_networks.build_network``: ImageNet
weights and a fresh head, or a fresh tiny CNN) with fresh Fig. 7 branches, and follow its recipe (Adam, the
backbone's learning rate and epochs, the Table I batch size and frozen layers). The training data arrive
either as shuffled epochs, exactly as ``trained_networks.train_classifier`` feeds them (``sampler=None``), or
through a curriculum sampler over the whole network's training data (a layer-wise stage restarts its pacing).
With every early-exit weight at 0, end-to-end training leaves the classifier bit for bit as training it alone
from the same seed through the same data would: ``train_classifier``'s network with ``sampler=None``, the
classifier fitted alone through the same sampler otherwise (the tests hold both to the last bit). A process
traces each kind of network once and trains every later run in that compiled copy (``_COMPILED``): the same
weights to the last bit, without 20-30 s of tracing per run. Likewise ``exit_accuracies`` predicts every
trained network of one architecture through one uncompiled twin (``_TWINS``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import keras
import numpy as np

from mecl_utils.curriculum.rows import array_batches
from mecl_utils.curriculum.sampler import CurriculumSampler, curriculum_dataset
from mecl_utils.networks.backbones import (
    build_for_fit,
    copy_variables,
    get_layer,
    reset_optimizer,
    top1_accuracy,
)
from mecl_utils.networks.branches import build_branch
from mecl_utils.networks.costs import total_macs
from mecl_utils.networks.data import Dataset, Split, Splits
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.trained_networks import (
    build_network,
    network_batch_size,
    network_epochs,
)
from mecl_utils.training.execution import STEPS_PER_EXECUTION

__all__ = [
    "WEIGHTINGS",
    "MultiExit",
    "build_multi_exit_network",
    "compute_shares",
    "exit_accuracies",
    "exit_weights",
    "train_end_to_end",
    "train_layer_wise",
]

WEIGHTINGS = ("equal", "sdn")
SDN_START = 0.01  # Kaya et al.'s offset of every early exit's weight


@dataclass(frozen=True, eq=False)
class MultiExit:
    """A classifier with branches at ``layers``: ``model`` outputs the branches' softmax, then the final's.

    ``twin``, where training set one, is an uncompiled model of the same architecture that this process
    shares between every network of that architecture; ``exit_accuracies`` predicts with it (``_twin``).
    """

    model: keras.Model
    classifier: keras.Model
    branches: tuple[keras.Model, ...]
    layers: tuple[str, ...]
    twin: keras.Model | None = None


def build_multi_exit_network(
    profile: Profile, network: str, dataset: Dataset, layers: Sequence[str], *, seed: int, init_seed: int
) -> MultiExit:
    """``network`` untrained (seeded as ``train_classifier`` seeds it), with branches at ``layers``.

    The branches are built first, from ``init_seed`` (the same initial weights a classifier-wise branch of the
    same repetition gets); then the classifier exactly as ``trained_networks.train_classifier`` builds it from
    ``seed``, so that everything it draws afterwards (head, dropout masks, shuffling) is what it would draw
    without branches.
    """
    # The shapes come from an unseeded throwaway copy: building it before the seeded ones disturbs nothing.
    shapes = _branch_shapes(_unseeded(profile, network, dataset, layers))
    return _seeded(profile, network, dataset, layers, shapes, seed, init_seed)


def _unseeded(profile: Profile, network: str, dataset: Dataset, layers: Sequence[str]) -> MultiExit:
    if not layers:
        raise ValueError("a multi-exit network needs at least one branch layer")
    classifier = build_network(profile, network, dataset)
    shapes = [tuple(get_layer(classifier, name).output.shape[1:]) for name in layers]
    return _attach(classifier, _branches(shapes, dataset.num_classes), layers)


def _branch_shapes(multi: MultiExit) -> list[tuple[int, ...]]:
    return [tuple(branch.input.shape[1:]) for branch in multi.branches]


def _seeded(profile, network, dataset, layers, shapes, seed: int, init_seed: int) -> MultiExit:
    keras.utils.set_random_seed(init_seed)
    branches = _branches(shapes, dataset.num_classes)
    keras.utils.set_random_seed(seed)
    return _attach(build_network(profile, network, dataset), branches, layers)


def _branches(shapes, num_classes: int) -> list[keras.Model]:
    numbered = enumerate(shapes, start=1)
    return [build_branch(shape, num_classes, name=f"branch{number}") for number, shape in numbered]


def _attach(classifier: keras.Model, branches: Sequence[keras.Model], layers: Sequence[str]) -> MultiExit:
    exits = [
        branch(get_layer(classifier, name).output) for branch, name in zip(branches, layers, strict=True)
    ]
    model = keras.Model(classifier.inputs, [*exits, classifier.output], name=f"{classifier.name}_multi_exit")
    return MultiExit(model, classifier, tuple(branches), tuple(layers))


def compute_shares(classifier: keras.Model, layers: Sequence[str]) -> tuple[float, ...]:
    """SDN's C_i: the share of ``classifier``'s MACs (``costs.total_macs``) done before each layer's exit.

    The MACs before an exit are those of the part of the classifier that the layer's output needs, what
    ``costs.exit_costs(classifier, layer).backbone.macs`` counts; counted here on that part as a model of its
    own, because ``exit_costs`` without a branch builds one, which would draw from the seeded random state.
    """
    total = total_macs(classifier)
    parts = [keras.Model(classifier.inputs, get_layer(classifier, name).output) for name in layers]
    return tuple(total_macs(part) / total for part in parts)


def exit_weights(
    weighting: str | Sequence[float], shares: Sequence[float], epoch: int, epochs: int
) -> tuple[float, ...]:
    """The loss weight of each early exit in epoch ``epoch`` of ``epochs``; the final exit's is 1.

    ``epoch`` counts from 0, as Keras' callbacks do; SDN counts its epochs e from 1, so "sdn" reads
    e = ``epoch`` + 1: min(C_i, 0.01 + (``epoch`` + 1)·C_i/``epochs``), C_i being ``shares`` (module
    docstring). ``weighting``: "equal", "sdn", or one constant weight per early exit.
    """
    if isinstance(weighting, str):
        if weighting == "equal":
            return tuple(1.0 for _ in shares)
        if weighting == "sdn":
            e = epoch + 1
            return tuple(min(share, SDN_START + e * share / epochs) for share in shares)
        raise ValueError(f"unknown exit weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}, or numbers")
    weights = tuple(float(w) for w in weighting)
    if len(weights) != len(shares) or any(not w >= 0 for w in weights):
        raise ValueError(f"give one weight >= 0 per early exit ({len(shares)}), got {tuple(weighting)}")
    return weights


class _ExitWeightSchedule(keras.callbacks.Callback):
    """Sets the early exits' loss weights (Keras variables the compiled loss reads) at each epoch's start."""

    def __init__(self, variables, weighting, shares, epochs):
        super().__init__()
        self.variables, self.weighting, self.shares, self.epochs = variables, weighting, shares, epochs
        self.history: list[tuple[float, ...]] = []

    def on_epoch_begin(self, epoch, logs=None):
        weights = exit_weights(self.weighting, self.shares, epoch, self.epochs)  # epoch: from 0
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


def _compile(model: keras.Model, losses: list, profile: Profile, sampler: CurriculumSampler | None) -> None:
    """Compile as ``trained_networks.train_classifier`` does, with one loss per output."""
    outputs = len(model.outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(profile.backbone_learning_rate),
        loss=losses if outputs > 1 else losses[0],
        metrics=[["accuracy"]] * outputs if outputs > 1 else ["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION if sampler is None else sampler.batches_per_epoch,
    )


def _fit(
    model: keras.Model,
    network: str,
    splits: Splits,
    sampler: CurriculumSampler | None,
    epochs: int,
    callbacks: list,
    verbose: int,
):
    """Fit as ``trained_networks.train_classifier`` does, every output reading the same labels, with no
    per-epoch validation pass: no callback here reads it and evaluation changes no weight. Without it the
    chapter's network runs took about 5 % less wall time (``benchmarks/network_runs.py``,
    benchmarks/README.md).
    """
    outputs = len(model.outputs)

    def targets(y):
        return tuple([y] * outputs) if outputs > 1 else y

    if sampler is None:
        labels = targets(splits.train.y)
        build_for_fit(model, (splits.train.x, labels))
        return model.fit(
            splits.train.x,
            labels,
            batch_size=network_batch_size(network),
            epochs=epochs,
            shuffle=True,
            callbacks=callbacks,
            verbose=verbose,
        )
    if sampler.num_samples != len(splits.train):
        raise ValueError(
            f"the sampler orders {sampler.num_samples} samples but train has {len(splits.train)}"
        )
    batches = curriculum_dataset(splits.train.x, splits.train.y, sampler, epochs=epochs)
    batches = batches.map(lambda x, y: (x, targets(y)))
    build_for_fit(model, batches.element_spec)
    return model.fit(
        batches,
        epochs=epochs,
        steps_per_epoch=sampler.batches_per_epoch,
        shuffle=False,
        callbacks=callbacks,
        verbose=verbose,
    )


@dataclass(frozen=True, eq=False)
class _Trainer:
    """A multi-exit network compiled for one strategy: the models it fits and the exits' weight variables."""

    multi: MultiExit
    models: tuple[keras.Model, ...]  # end-to-end: the whole network; layer-wise: one per stage
    exit_weights: tuple[keras.Variable, ...]


# Compiled networks kept between the runs of this process (compare ``classifier_wise._COMPILED``), by
# everything their traced functions depend on. Tracing Keras' train function of a multi-exit MobileNet
# takes 20-30 s on one thread, as long as the book's two epochs then take (benchmarks/README.md). A run
# copies its freshly seeded weights into one, trains, and copies them back: what it returns is its own
# network.
_COMPILED: dict[tuple, _Trainer] = {}
_COMPILED_LIMIT = 2


def _trainer(
    kind: str, profile: Profile, network: str, dataset: Dataset, layers: Sequence[str], sampler
) -> _Trainer:
    steps = None if sampler is None else sampler.batches_per_epoch
    key = (kind, profile, network, dataset.name, dataset.num_classes, tuple(layers), steps)
    if key in _COMPILED:
        return _COMPILED[key]
    multi = _unseeded(profile, network, dataset, layers)
    variables = tuple(
        keras.Variable(0.0, trainable=False, name=f"exit{n}_weight") for n in range(1, len(layers) + 1)
    )
    if kind == "end_to_end":
        losses = [_WeightedCrossEntropy(v, f"exit{n}") for n, v in enumerate(variables, start=1)]
        _compile(multi.model, [*losses, _WeightedCrossEntropy(None, "final")], profile, sampler)
        models = (multi.model,)
    else:
        stages = [
            keras.Model(multi.classifier.inputs, branch(get_layer(multi.classifier, name).output))
            for branch, name in zip(multi.branches, layers, strict=True)
        ]
        models = (*stages, multi.classifier)
        for stage, model in enumerate(models, start=1):
            name = "final" if model is multi.classifier else f"exit{stage}"
            _compile(model, [_WeightedCrossEntropy(None, name)], profile, sampler)
    if len(_COMPILED) >= _COMPILED_LIMIT:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[key] = trainer = _Trainer(multi, models, variables)
    return trainer


# Uncompiled twins of the networks this process trains, by what their architecture depends on. Keras traces
# a model's predict function once per model object; a fresh network per run would trace it again in every
# run (about 0.8 s a run for the book's MobileNet, benchmarks/README.md). A twin is traced once and predicts
# for every run of its architecture, each run's weights copied in first.
_TWINS: dict[tuple, keras.Model] = {}


def _twin(profile: Profile, network: str, dataset: Dataset, layers: Sequence[str]) -> keras.Model:
    key = (
        profile,
        network,
        dataset.name,
        dataset.num_classes,
        tuple(dataset.x_train.shape[1:]),
        tuple(layers),
    )
    if key not in _TWINS:
        if len(_TWINS) >= _COMPILED_LIMIT:
            _TWINS.pop(next(iter(_TWINS)))
        _TWINS[key] = _unseeded(profile, network, dataset, layers).model
    return _TWINS[key]


def _reset_optimizers(trainer: _Trainer, profile: Profile) -> None:
    for model in trainer.models:
        reset_optimizer(model.optimizer, profile.backbone_learning_rate)


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
    epochs = network_epochs(profile, epochs)
    trainer = _trainer("end_to_end", profile, network, dataset, layers, sampler)
    multi = _seeded(profile, network, dataset, layers, _branch_shapes(trainer.multi), seed, init_seed)
    shares = compute_shares(multi.classifier, layers)
    exit_weights(weighting, shares, 0, epochs)  # a bad weighting fails before any training
    copy_variables(trainer.multi.model, multi.model)
    _reset_optimizers(trainer, profile)
    schedule = _ExitWeightSchedule(trainer.exit_weights, weighting, shares, epochs)
    _fit(trainer.models[0], network, splits, sampler, epochs, [schedule], verbose)
    copy_variables(multi.model, trainer.multi.model)
    return replace(multi, twin=_twin(profile, network, dataset, layers)), schedule.history


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
    epochs = network_epochs(profile, epochs)
    trainer = _trainer("layer_wise", profile, network, dataset, layers, sampler)
    multi = _seeded(profile, network, dataset, layers, _branch_shapes(trainer.multi), seed, init_seed)
    copy_variables(trainer.multi.model, multi.model)
    _reset_optimizers(trainer, profile)
    classifier = trainer.multi.classifier
    trainable = {layer.name: layer.trainable for layer in classifier.layers}
    names = [layer.name for layer in classifier.layers]
    ends = [names.index(get_layer(classifier, name).name) for name in layers] + [len(names) - 1]
    for branch in trainer.multi.branches:
        branch.trainable = False
    start = 0
    for stage, (end, model) in enumerate(zip(ends, trainer.models, strict=True), start=1):
        for index, layer in enumerate(classifier.layers):
            layer.trainable = trainable[layer.name] and start <= index <= end
        branch = trainer.multi.branches[stage - 1] if stage <= len(layers) else None
        if branch is not None:
            branch.trainable = True
        _fit(model, network, splits, sampler, epochs, [], verbose)
        if branch is not None:
            branch.trainable = False
        if on_stage is not None:
            copy_variables(multi.model, trainer.multi.model)
            on_stage(stage, multi)
        start = end + 1
    for layer in classifier.layers:  # as the Table I rule left them, for whoever trains it further
        layer.trainable = trainable[layer.name]
    for branch in trainer.multi.branches:
        branch.trainable = True
    copy_variables(multi.model, trainer.multi.model)
    return replace(multi, twin=_twin(profile, network, dataset, layers))


def exit_accuracies(
    multi: MultiExit, split: Split, *, batch_size: int = 256
) -> tuple[tuple[np.ndarray, ...], tuple[float, ...]]:
    """Each exit's softmax outputs on ``split`` (branches first, then the final exit) and their accuracies.

    A trained network predicts through its ``twin``, its weights copied in: the same outputs to the last
    bit, without tracing Keras' predict function for every network. The images reach it as
    ``rows.array_batches``, which Keras starts faster than the array itself.
    """
    model = multi.model
    if multi.twin is not None:
        copy_variables(multi.twin, multi.model)
        model = multi.twin
    outputs = model.predict(array_batches(split.x, batch_size), verbose=0)  # uncompiled: a batch a step
    return tuple(np.asarray(o) for o in outputs), tuple(top1_accuracy(o, split.y) for o in outputs)
