"""What a branch at one layer reads, per split, held where it fits (Sec. II-A's frozen backbone, at scale).

A branch trains on the frozen backbone's activations at its layer (``features``). Those arrays outgrow
memory at the paper's sizes, so ``branch_inputs`` holds them where ``feature_modes.choose_mode`` says they
fit: in memory (``features.cached_features``), as float16 shards on disk (``feature_shards``), or not at
all, the cut backbone then computing them inside every training step. The case's runs
(``run.prepare.prepare_case``) and the exits that score exit agreement (``exit_agreement``) read their
inputs through it alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from mecl_utils.networks.backbones import build_classifier, build_tiny_cnn, get_layer
from mecl_utils.networks.branches import branch_layer
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.feature_modes import Budget, choose_mode, cut_backbone, feature_bytes
from mecl_utils.protocol.feature_shards import cached_feature_shards
from mecl_utils.protocol.features import SPLIT_NAMES, cached_features
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.trained_networks import TINY_NETWORKS

__all__ = ["BranchInputs", "branch_inputs", "layer_modes", "layer_shapes"]


@dataclass(frozen=True, eq=False)
class BranchInputs:
    """A branch layer's inputs per split (train, val, hparam, test), by ``mode``."""

    # "memory": float32 arrays; "shards": float16 ``ShardedFeatures`` on disk; "backbone": the images,
    # which ``cut`` turns into features inside the training graph.
    inputs: dict[str, np.ndarray]
    mode: str
    cut: keras.Model | None = None


def branch_inputs(
    profile: Profile,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    backbone: keras.Model,
    backbone_key: str,
    layer: str,
    *,
    budget: Budget | None = None,
    verbose: bool = False,
) -> BranchInputs:
    """The inputs of a branch at ``layer`` of the trained ``backbone`` (cache key ``backbone_key``), held as
    ``choose_mode`` chooses on ``budget`` (default: this machine's), extracted where the cache lacks them.

    One pass of the backbone for every branch layer of the profile costs less than one pass per layer
    (benchmarks/README.md), and the other branches of this backbone then find theirs in the cache: every
    layer whose own mode is this one's is extracted together, while they fit in memory together.
    """
    budget = budget or Budget.of_this_machine()
    layers = [branch_layer(backbone_network, dataset.name, number) for number in profile.branch_numbers]
    shapes = {name: tuple(get_layer(backbone, name).output.shape[1:]) for name in layers}
    modes = layer_modes(profile, backbone_network, dataset, splits, shapes, budget)
    sizes = {name: _feature_bytes(shape, splits) for name, shape in shapes.items()}
    mode = modes[layer]
    layers = [layer, *sorted(other for other in modes if other != layer and modes[other] == mode)]
    if mode == "memory" and sum(sizes[name] for name in layers) > budget.memory_bytes:
        layers = [layer]
    if mode == "backbone":
        images = {name: getattr(splits, name).x for name in SPLIT_NAMES}
        return BranchInputs(images, mode, cut_backbone(backbone, layer))
    if mode == "memory":
        features = cached_features(
            profile,
            backbone_network,
            dataset,
            splits,
            backbone_key,
            layers,
            classifier=backbone,
            verbose=verbose,
        )
    else:
        features = cached_feature_shards(
            backbone, backbone_key, backbone_network, dataset, splits, layers, verbose=verbose
        )
    return BranchInputs({split: by_layer[layer] for split, by_layer in features.items()}, mode)


def layer_modes(
    profile: Profile,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    shapes: dict[str, tuple[int, ...]],
    budget: Budget,
) -> dict[str, str]:
    """Where the inputs of a branch at each layer of ``shapes`` (its feature shape) live, as
    ``branch_inputs`` holds them: ``feature_modes.choose_mode`` on the features of every split."""
    return {
        layer: choose_mode(
            profile,
            backbone_network,
            layer,
            _feature_bytes(shape, splits),
            budget,
            data=lambda: (dataset, splits),
        )
        for layer, shape in shapes.items()
    }


def layer_shapes(
    profile: Profile, network: str, input_shape: tuple[int, int, int], layers: set[str]
) -> dict[str, tuple[int, ...]]:
    """The output shape (without the batch axis) of each of ``layers`` of ``network`` as the profile
    builds it, from one model with random weights."""
    if network in TINY_NETWORKS:
        model = build_tiny_cnn(10, input_shape=input_shape, width=TINY_NETWORKS[network])
    else:
        alpha = profile.mobilenet_alpha if network == "mobilenet" else 1.0
        model = build_classifier(
            network, 10, input_shape=input_shape, image_size=profile.image_size, weights=None, alpha=alpha
        )
    return {layer: tuple(int(d) for d in get_layer(model, layer).output.shape[1:]) for layer in layers}


def _feature_bytes(shape: tuple[int, ...], splits: Splits) -> int:
    return feature_bytes(sum(len(getattr(splits, name)) for name in SPLIT_NAMES), shape)
