"""From a profile and a case to what its runs read (Sec. III): data, backbone, features, teacher scores.

For one case (backbone, dataset, branch number) of a profile this loads the data set and its four splits,
gets the case's networks (``case_networks``: the backbone and the teachers trained side by side where the
cache lacks them, the training split scored by every teacher of the profile), and extracts the branch
layer's activations for every split, where they fit (``feature_modes``: in memory, as float16 shards on
disk, or computed by the cut backbone in every run). Everything heavy is cached by the modules it comes
from (``teachers``, ``features``, ``feature_modes``), so a second call is fast.
"""

from __future__ import annotations

import os
import time

import numpy as np

from mecl_utils.cache import array_fingerprint, cached_arrays, dataset_fingerprint
from mecl_utils.curriculum.difficulty import reads_labels
from mecl_utils.networks.backbones import get_layer
from mecl_utils.networks.branches import branch_layer
from mecl_utils.networks.data import Splits
from mecl_utils.protocol.difficulty_scores import label_outputs
from mecl_utils.protocol.feature_modes import Budget, choose_mode, cut_backbone, feature_bytes
from mecl_utils.protocol.feature_modes import identity as feature_identity
from mecl_utils.protocol.feature_shards import cached_feature_shards
from mecl_utils.protocol.features import SPLIT_NAMES, cached_features
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.runs import Case, CaseData
from mecl_utils.protocol.trained_networks import evaluate
from mecl_utils.run.case_networks import case_networks, load_splits
from mecl_utils.run.engine import Engine

__all__ = ["prepare_case"]


def prepare_case(
    profile: Profile,
    case: Case,
    *,
    data_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    engine: Engine | None = None,
    budget: Budget | None = None,
    verbose: bool = False,
) -> CaseData:
    """Features, labels and teacher losses for ``case``, with timings of each stage in ``info``.

    The stages: data (load and split), networks (``case_networks``: backbone and teachers trained side by
    side, the training split scored; then the backbone's test accuracy), features of the branch layer, held
    as ``feature_modes.choose_mode`` chooses on ``budget`` (default: this machine's), as ``plan`` shows.
    ``workers`` and ``engine`` go to ``case_networks``.
    """
    timings = {}
    start = time.perf_counter()
    dataset, splits = load_splits(profile, case.dataset, None if data_dir is None else str(data_dir))
    timings["data_seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    networks = case_networks(
        profile, case.backbone, dataset, splits, workers=workers, engine=engine, verbose=verbose
    )
    backbone, key = networks.backbone, networks.backbone_key
    # Cached: every chapter prepares its cases again, and predicting the whole test split each time would
    # repeat the same few seconds of work.
    test_accuracy = cached_arrays(
        "test_accuracy",
        {"classifier": key, "test_index": array_fingerprint(splits.test.index)},
        lambda: {"accuracy": np.array(evaluate(backbone, splits.test))},
    )["accuracy"]
    losses = networks.teacher_losses
    timings["networks_seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    layer = branch_layer(case.backbone, case.dataset, case.branch)
    budget = budget or Budget.of_this_machine()
    # One pass of the backbone for every branch layer of the profile costs less than one pass per layer
    # (benchmarks/README.md), and the other branches of this backbone then find theirs in the cache: every
    # layer whose own mode is this case's is extracted together, while they fit in memory together.
    sizes, modes = {}, {}
    for number in profile.branch_numbers:
        other = branch_layer(case.backbone, case.dataset, number)
        sizes[other] = _feature_bytes(backbone, other, splits)
        modes[other] = choose_mode(
            profile, case.backbone, other, sizes[other], budget, data=lambda: (dataset, splits)
        )
    mode = modes[layer]
    layers = [layer, *sorted(other for other in modes if other != layer and modes[other] == mode)]
    if mode == "memory" and sum(sizes[name] for name in layers) > budget.memory_bytes:
        layers = [layer]
    cut = None
    if mode == "backbone":
        cut = cut_backbone(backbone, layer)
        inputs = {name: getattr(splits, name).x for name in SPLIT_NAMES}
    else:
        if mode == "memory":
            features = cached_features(
                profile, case.backbone, dataset, splits, key, layers, classifier=backbone, verbose=verbose
            )
        else:
            features = cached_feature_shards(
                backbone, key, case.backbone, dataset, splits, layers, verbose=verbose
            )
        inputs = {split: by_layer[layer] for split, by_layer in features.items()}
    timings["features_seconds"] = time.perf_counter() - start

    return CaseData(
        features=inputs,
        labels={name: getattr(splits, name).y for name in inputs},
        teacher_losses=losses,
        num_classes=dataset.num_classes,
        layer=layer,
        provenance={"data_fingerprint": dataset_fingerprint(dataset)[:16], "backbone_key": key},
        identity={
            "backbone": key,
            "features": feature_identity(mode),
            "split_index": {name: array_fingerprint(getattr(splits, name).index) for name in inputs},
            "teachers": networks.teacher_keys,
        },
        info={
            "data_source": dataset.source,
            "backbone_test_accuracy": float(test_accuracy),
            "feature_mode": mode,
            **{name: round(seconds, 2) for name, seconds in timings.items()},
        },
        feature_mode=mode,
        cut_backbone=cut,
        label_outputs={
            teacher: label_outputs(profile, teacher, case.backbone, dataset, splits)
            for teacher in (*profile.teachers, *profile.scores)
            if reads_labels(teacher)
        }
        if any(condition.label_noise for condition in profile.conditions)
        else None,
    )


def _feature_bytes(backbone, layer: str, splits: Splits) -> int:
    shape = tuple(get_layer(backbone, layer).output.shape[1:])
    return feature_bytes(sum(len(getattr(splits, name)) for name in SPLIT_NAMES), shape)
