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
weights to the last bit, without 20-30 s of tracing per run. The networks themselves, and their exits'
outputs, are ``multi_exit_network``'s; what training returns carries the twin that predicts for it there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import keras

from mecl_utils.curriculum.sampler import CurriculumSampler, curriculum_dataset
from mecl_utils.networks.backbones import build_for_fit, copy_variables, get_layer, reset_optimizer
from mecl_utils.networks.costs import total_macs
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.trained_networks import network_batch_size, network_epochs
from mecl_utils.strategies.multi_exit_network import (
    MultiExit,
    architecture,
    branch_shapes,
    prediction_twin,
    seeded_network,
    unseeded_network,
)
from mecl_utils.training.execution import STEPS_PER_EXECUTION

__all__ = [
    "WEIGHTINGS",
    "compute_shares",
    "exit_weights",
    "train_end_to_end",
    "train_layer_wise",
]

WEIGHTINGS = ("equal", "sdn")
SDN_START = 0.01  # Kaya et al.'s offset of every early exit's weight


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
    key = (kind, *architecture(profile, network, dataset, layers), steps)
    if key in _COMPILED:
        return _COMPILED[key]
    multi = unseeded_network(profile, network, dataset, layers)
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
    multi = seeded_network(profile, network, dataset, layers, branch_shapes(trainer.multi), seed, init_seed)
    shares = compute_shares(multi.classifier, layers)
    exit_weights(weighting, shares, 0, epochs)  # a bad weighting fails before any training
    copy_variables(trainer.multi.model, multi.model)
    _reset_optimizers(trainer, profile)
    schedule = _ExitWeightSchedule(trainer.exit_weights, weighting, shares, epochs)
    _fit(trainer.models[0], network, splits, sampler, epochs, [schedule], verbose)
    copy_variables(multi.model, trainer.multi.model)
    return replace(multi, twin=prediction_twin(profile, network, dataset, layers)), schedule.history


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
    multi = seeded_network(profile, network, dataset, layers, branch_shapes(trainer.multi), seed, init_seed)
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
    return replace(multi, twin=prediction_twin(profile, network, dataset, layers))
