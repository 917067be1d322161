"""The dry-run plan: feature sizes, split sizes, runs and times per case, computed without training."""

import math

import numpy as np
import pandas as pd
import pytest

from mecl_utils.__main__ import main
from mecl_utils.networks.backbones import build_tiny_cnn
from mecl_utils.networks.branches import branch_layer
from mecl_utils.protocol import feature_shards, plan
from mecl_utils.protocol.feature_modes import Budget, choose_mode
from mecl_utils.protocol.feature_shards import cached_feature_shards
from mecl_utils.protocol.features import extract_features
from mecl_utils.protocol.plan import grid_plan, plan_table, split_sizes
from mecl_utils.protocol.profiles import PROFILES, get_profile
from mecl_utils.protocol.runs import cases
from mecl_utils.protocol.stages import planned_runs
from mecl_utils.protocol.trained_networks import backbone_key
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


SHAPE = (4, 4, 8)  # every layer's features below: the plan builds no model, the shards run no backbone
NOTHING = Budget(memory_bytes=0, disk_bytes=0)  # by size alone, every case would use the cut backbone


@pytest.fixture
def data(monkeypatch, tmp_path, smoke_digits):
    """A cache of its own, and the smoke digits as every data set: what plan and run both read."""
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(
        plan, "layer_shapes", lambda profile, net, shape, layers: dict.fromkeys(layers, SHAPE)
    )
    monkeypatch.setattr(feature_shards, "extract_features", _zeros)
    return lambda name: smoke_digits


def _zeros(classifier, layers, x):
    return {layer: np.zeros((len(x), *SHAPE), np.float32) for layer in layers}


def shards_of_two_layers(profile, data):
    """Complete shards at the first case's layer, a partly extracted folder at the second's, as run writes
    them; returns (network, layer) of each."""
    dataset, splits = data("any")
    written = []
    for case in cases(profile)[:2]:
        layer = branch_layer(case.backbone, case.dataset, case.branch)
        key = backbone_key(profile, case.backbone, dataset, splits, seed=profile.seed)
        shards = cached_feature_shards(None, key, case.backbone, dataset, splits, [layer])
        written.append(((case.backbone, layer), shards["test"][layer].folder))
    (written[1][1] / "manifest.json").unlink()  # interrupted in the test split: shards, but no manifest
    return [where for where, _ in written]


def run_mode(profile, case_plan, budget, data):
    """The mode ``prepare_case`` holds the case's features in, for the features' bytes the plan computed."""
    loaded = data(case_plan.case.dataset)
    return choose_mode(
        profile,
        case_plan.case.backbone,
        case_plan.layer,
        case_plan.feature_bytes,
        budget,
        data=lambda: loaded,
    )


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("budget", [NOTHING, Budget(0, GIB), Budget(GIB, 0)], ids=["none", "disk", "memory"])
def test_the_plan_shows_the_mode_run_uses_for_every_case_of_every_profile(name, budget, data):
    profile = get_profile(name)
    shards_of_two_layers(profile, data)
    plans = grid_plan(profile, budget=budget, data=data)
    assert [p.case for p in plans] == cases(profile)
    assert [p.mode for p in plans] == [run_mode(profile, p, budget, data) for p in plans]


@pytest.mark.parametrize("name", PROFILES)
def test_complete_shards_are_planned_as_shards_over_every_budget_and_partly_extracted_ones_are_not(
    name, data
):
    profile = get_profile(name)
    complete, partial = shards_of_two_layers(profile, data)
    modes = {(p.case.backbone, p.layer): p.mode for p in grid_plan(profile, budget=NOTHING, data=data)}
    assert modes.pop(complete) == "shards"
    assert set(modes.values()) == {"backbone"} and partial in modes


def test_a_plan_without_the_data_says_it_needs_it_once_the_cache_holds_shards_of_a_case(data):
    shards_of_two_layers(SMOKE, data)
    with pytest.raises(ValueError, match=r"holds feature shards of tiny_cnn at .*pass data="):
        grid_plan(SMOKE, budget=NOTHING)


def test_the_plan_command_shows_the_complete_shards_run_would_keep(data, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MECL_FEATURE_MEMORY_GIB", "0")
    monkeypatch.setenv("MECL_FEATURE_DISK_GIB", "0")
    shards_of_two_layers(SMOKE, data)
    main(["plan", "--profile", "smoke", "--results", str(tmp_path / "none.csv")])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if "tiny_cnn/digits" in line]
    assert [("shards" in row, "backbone" in row) for row in rows] == [(True, False), (False, True)]
