"""From a profile and a case to what its runs read (Sec. III): data, backbone, features, teacher scores.

For one case (backbone, dataset, branch number) of a profile this loads the data set and its four splits,
gets the case's networks (``case_networks``: the backbone and the teachers trained side by side where the
cache lacks them, the training split scored by every teacher of the profile), and extracts the branch
layer's activations for every split, where they fit (``branch_inputs``: in memory, as float16 shards on
disk, or computed by the cut backbone in every run). Everything heavy is cached by the modules it comes
from (``trained_networks``, ``features``, ``feature_shards``), so a second call is fast.
"""

from __future__ import annotations

import os
import time

import numpy as np

from mecl_utils.cache import array_fingerprint, cached_arrays, dataset_fingerprint
from mecl_utils.curriculum.difficulty import reads_labels
from mecl_utils.networks.branches import branch_layer
from mecl_utils.protocol.branch_inputs import branch_inputs
from mecl_utils.protocol.difficulty_scores import label_outputs
from mecl_utils.protocol.feature_modes import Budget
from mecl_utils.protocol.feature_modes import identity as feature_identity
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
    held = branch_inputs(
        profile, case.backbone, dataset, splits, backbone, key, layer, budget=budget, verbose=verbose
    )
    inputs, mode = held.inputs, held.mode
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
        cut_backbone=held.cut,
        label_outputs={
            teacher: label_outputs(profile, teacher, case.backbone, dataset, splits)
            for teacher in (*profile.teachers, *profile.scores)
            if reads_labels(teacher)
        }
        if any(condition.label_noise for condition in profile.conditions)
        else None,
    )
