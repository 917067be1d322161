"""Multi-exit networks: a classifier with branches at its Table II layers, built seeded; their exits' outputs.

The whole-network strategies (the paper's Sec. II-A; ``whole_network``) train one of these. It is built as
the classifier-wise protocol builds its parts: the branches from the repetition's "init" seed, then the
classifier exactly as ``trained_networks.train_classifier`` builds it from its seed
(``build_multi_exit_network``). ``exit_accuracies`` reads every exit's outputs on a split; a trained network
predicts through a twin that this process keeps per architecture (``prediction_twin``), so that Keras
traces its predict function once rather than for every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from mecl_utils.curriculum.rows import array_batches
from mecl_utils.networks.backbones import copy_variables, get_layer, top1_accuracy
from mecl_utils.networks.branches import build_branch
from mecl_utils.networks.data import Dataset, Split
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.trained_networks import build_network

__all__ = [
    "MultiExit",
    "architecture",
    "branch_shapes",
    "build_multi_exit_network",
    "exit_accuracies",
    "prediction_twin",
    "seeded_network",
    "unseeded_network",
]


@dataclass(frozen=True, eq=False)
class MultiExit:
    """A classifier with branches at ``layers``: ``model`` outputs the branches' softmax, then the final's.

    ``twin``, where training set one, is an uncompiled model of the same architecture that this process
    shares between every network of that architecture; ``exit_accuracies`` predicts with it
    (``prediction_twin``).
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
    shapes = branch_shapes(unseeded_network(profile, network, dataset, layers))
    return seeded_network(profile, network, dataset, layers, shapes, seed, init_seed)


def unseeded_network(profile: Profile, network: str, dataset: Dataset, layers: Sequence[str]) -> MultiExit:
    """A multi-exit ``network`` drawn from whatever random state there is: a shape to read, or a copy to
    train in or predict with, whose own weights never matter."""
    if not layers:
        raise ValueError("a multi-exit network needs at least one branch layer")
    classifier = build_network(profile, network, dataset)
    shapes = [tuple(get_layer(classifier, name).output.shape[1:]) for name in layers]
    return _attach(classifier, _branches(shapes, dataset.num_classes), layers)


def branch_shapes(multi: MultiExit) -> list[tuple[int, ...]]:
    """The input shape of each of ``multi``'s branches: its layer's output shape."""
    return [tuple(branch.input.shape[1:]) for branch in multi.branches]


def seeded_network(profile, network, dataset, layers, shapes, seed: int, init_seed: int) -> MultiExit:
    """``build_multi_exit_network`` with the branches' input ``shapes`` already known."""
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


# Uncompiled twins of the networks this process trains, by what their architecture depends on. Keras traces
# a model's predict function once per model object; a fresh network per run would trace it again in every
# run (about 0.8 s a run for the book's MobileNet, benchmarks/README.md). A twin is traced once and predicts
# for every run of its architecture, each run's weights copied in first.
_TWINS: dict[tuple, keras.Model] = {}
TWINS_LIMIT = 2


def architecture(profile: Profile, network: str, dataset: Dataset, layers: Sequence[str]) -> tuple:
    """What a multi-exit network's architecture depends on: a key for the copies kept per process."""
    return (
        profile,
        network,
        dataset.name,
        dataset.num_classes,
        tuple(dataset.x_train.shape[1:]),
        tuple(layers),
    )


def prediction_twin(profile: Profile, network: str, dataset: Dataset, layers: Sequence[str]) -> keras.Model:
    """The uncompiled copy of this architecture that predicts for every trained network of it here."""
    key = architecture(profile, network, dataset, layers)
    if key not in _TWINS:
        if len(_TWINS) >= TWINS_LIMIT:
            _TWINS.pop(next(iter(_TWINS)))
        _TWINS[key] = unseeded_network(profile, network, dataset, layers).model
    return _TWINS[key]


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
