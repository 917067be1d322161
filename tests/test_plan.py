"""The dry-run plan: feature sizes, split sizes, runs and times per case, computed without training."""

import math

import numpy as np
import pandas as pd

from mecl_utils.__main__ import main
from mecl_utils.networks.backbones import build_tiny_cnn
from mecl_utils.protocol.feature_modes import Budget
from mecl_utils.protocol.features import extract_features
from mecl_utils.protocol.plan import grid_plan, plan_table, split_sizes
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.stages import planned_runs
from mecl_utils.training.classifier_wise import TRAINING_VERSION

SMOKE = get_profile("smoke")


def test_split_sizes_are_those_the_splits_have(smoke_digits):
    _, splits = smoke_digits
    expected = {name: len(getattr(splits, name).y) for name in ("train", "val", "hparam", "test")}
    assert split_sizes(SMOKE, "digits") == expected


def test_feature_shape_is_what_extraction_gives():
    [first, _] = grid_plan(SMOKE)
    model = build_tiny_cnn(10, input_shape=(8, 8, 1), width=16)
    features = extract_features(model, [first.layer], np.zeros((2, 8, 8, 1), dtype="uint8"))
    assert first.feature_shape == features[first.layer].shape[1:]
    assert first.feature_bytes == sum(first.images.values()) * math.prod(first.feature_shape) * 4


GIB = 2**30
MACHINE = Budget(memory_bytes=12 * GIB, disk_bytes=40 * GIB)  # half of 24 GiB of RAM and of 80 GiB free


def paper_plan(label: str):
    return next(p for p in grid_plan(get_profile("paper"), budget=MACHINE) if p.case.label == label)


def test_paper_resnet152_branch_1_features_are_64_gb_for_the_training_split():
    plan = paper_plan("resnet152/cifar10/branch 1")
    assert plan.layer == "conv3_block1_out" and plan.feature_shape == (28, 28, 512)
    assert plan.images["train"] * math.prod(plan.feature_shape) * 4 == 40_000 * 28 * 28 * 512 * 4  # 64.2 GB
    row = plan_table([plan], memory_bytes=24 * GIB).iloc[0]
    assert row["mode"] == "backbone" and row["stored GiB"] == 0  # 89.7 GiB: neither budget holds them
    assert row["runs"] == planned_runs(get_profile("paper"))


def test_features_over_the_memory_budget_are_planned_as_float16_shards_of_half_the_bytes():
    plan = paper_plan("densenet201/cifar10/branch 1")  # 28.0 GiB over all splits
    assert plan.mode == "shards" and plan.stored_bytes == plan.feature_bytes // 2


def test_a_budget_of_free_space_shrinks_with_the_shards_planned_before():
    profile = get_profile("paper", backbones=("inceptionv3",), datasets=("cifar10",))
    fixed = [plan.mode for plan in grid_plan(profile, budget=Budget(GIB, 40 * GIB))]
    measured = [plan.mode for plan in grid_plan(profile, budget=Budget(GIB, 40 * GIB, from_free_space=True))]
    assert fixed == ["shards", "shards"] and measured == ["shards", "backbone"]  # 35.1 + 39.4 GiB


def test_times_come_from_the_median_stored_run():
    results = pd.DataFrame(
        {"seconds": [1.0, 2.0, 30.0], "profile": "smoke", "training_version": TRAINING_VERSION}
    )
    [first, _] = grid_plan(SMOKE, results)
    assert first.seconds_per_run == 2.0 and first.estimated_seconds == 2.0 * planned_runs(SMOKE)


def test_the_plan_command_prints_every_case_and_trains_nothing(capsys, count_fits, tmp_path):
    main(["plan", "--profile", "smoke", "--results", str(tmp_path / "none.csv")])
    out = capsys.readouterr().out
    assert "tiny_cnn/digits/branch 1" in out and "tiny_cnn/digits/branch 2" in out
    assert "No stored runs" in out and count_fits == []
