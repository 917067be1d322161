"""Features that fit: the mode choice, float16 shards on disk, and the backbone cut at the branch layer."""

import pickle

import keras
import numpy as np
import pytest

from mecl_utils.curriculum import pacing
from mecl_utils.curriculum.sampler import sampler_for_method
from mecl_utils.networks.backbones import build_tiny_cnn
from mecl_utils.networks.branches import feature_extractor
from mecl_utils.protocol import feature_shards
from mecl_utils.protocol.feature_modes import Budget, choose_mode, cut_backbone
from mecl_utils.protocol.feature_shards import cached_feature_shards
from mecl_utils.protocol.features import extract_features
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.runs import Case, RunSpec
from mecl_utils.run.prepare import prepare_case
from mecl_utils.training.classifier_wise import BranchRun, train_branch

GIB = 2**30
BUDGET = Budget(memory_bytes=10 * GIB, disk_bytes=8 * GIB)
RUN = BranchRun("adam", 1e-3, epochs=2, plateau_patience=1, plateau_factor=0.5, init_seed=7, dropout_seed=8)


SMOKE = get_profile("smoke")


def no_data():
    raise AssertionError("the cache holds no shards of the layer: no data set needs to be read")


def mode_of(size: int, profile=SMOKE) -> str:
    return choose_mode(profile, "tiny_cnn", "block1_out", size, BUDGET, data=no_data)


def test_features_that_fit_in_memory_stay_there():
    assert mode_of(10 * GIB) == "memory"


def test_features_too_large_for_memory_go_to_float16_shards_when_half_their_bytes_fit_on_disk():
    assert mode_of(16 * GIB) == "shards"


def test_features_too_large_for_both_leave_the_backbone_in_the_training_graph():
    assert mode_of(17 * GIB) == "backbone"


def test_a_requested_mode_is_kept_whatever_the_size():
    assert mode_of(1, SMOKE.replace(feature_mode="backbone")) == "backbone"


def test_the_profile_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="feature_mode must be 'auto' or one of"):
        get_profile("smoke", feature_mode="gpu")


def test_budgets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MECL_FEATURE_MEMORY_GIB", "0.5")
    monkeypatch.setenv("MECL_FEATURE_DISK_GIB", "2")
    assert Budget.of_this_machine() == Budget(GIB // 2, 2 * GIB)


def test_a_budget_that_is_not_a_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("MECL_FEATURE_DISK_GIB", "lots")
    with pytest.raises(ValueError, match="MECL_FEATURE_DISK_GIB='lots' is not a number of GiB"):
        Budget.of_this_machine()


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(feature_shards, "SHARD_ROWS", 100)  # several shards per split


@pytest.fixture
def tiny_backbone():
    keras.utils.set_random_seed(0)
    return build_tiny_cnn(10, input_shape=(8, 8, 1), width=4)


def shards_of(backbone, digits, layers=("block1_out", "block2_out")):
    dataset, splits = digits
    return cached_feature_shards(backbone, "key", "tiny_cnn", dataset, splits, list(layers))


def test_shards_hold_the_float16_features_of_every_split(small_shards, tiny_backbone, smoke_digits):
    shards = shards_of(tiny_backbone, smoke_digits)
    train = smoke_digits[1].train
    expected = extract_features(tiny_backbone, ["block2_out"], train.x)["block2_out"].astype(np.float16)
    rows = np.array([0, 99, 100, len(train) - 1, 5])
    assert shards["train"]["block2_out"].shape == expected.shape
    np.testing.assert_array_equal(shards["train"]["block2_out"].gather(rows), expected[rows])
    assert set(shards) == {"train", "val", "hparam", "test"}


def test_an_interrupted_extraction_computes_only_the_missing_shards(
    small_shards, tiny_backbone, smoke_digits, monkeypatch
):
    folder = shards_of(tiny_backbone, smoke_digits)["train"]["block1_out"].folder
    (folder / "manifest.json").unlink()
    (folder / "00002.npy").unlink()
    calls = []
    extract = feature_shards.extract_features
    monkeypatch.setattr(
        feature_shards, "extract_features", lambda *a, **k: calls.append(1) or extract(*a, **k)
    )
    shards_of(tiny_backbone, smoke_digits)
    assert calls == [1]


def test_a_corrupt_shard_is_computed_again(small_shards, tiny_backbone, smoke_digits):
    features = shards_of(tiny_backbone, smoke_digits)["train"]["block1_out"]
    before = features.gather(np.arange(len(features)))
    (features.folder / "00001.npy").write_bytes(b"not a shard")
    with pytest.warns(UserWarning, match="00001.npy is unreadable"):
        again = shards_of(tiny_backbone, smoke_digits)["train"]["block1_out"]
    np.testing.assert_array_equal(again.gather(np.arange(len(again))), before)


def test_sharded_features_pickle_as_their_folder(small_shards, tiny_backbone, smoke_digits):
    features = shards_of(tiny_backbone, smoke_digits)["train"]["block1_out"]
    copy = pickle.loads(pickle.dumps(features))
    assert len(pickle.dumps(features)) < 1000
    np.testing.assert_array_equal(copy.gather([3, 250]), features.gather([3, 250]))


def test_training_on_shards_equals_training_on_the_same_float16_values_in_memory(
    small_shards, tiny_backbone, smoke_digits
):
    _, splits = smoke_digits
    shards = shards_of(tiny_backbone, smoke_digits, ["block1_out"])
    in_memory = {
        name: np.asarray(split["block1_out"].gather(np.arange(len(split["block1_out"]))), dtype=np.float32)
        for name, split in shards.items()
    }
    y = {name: getattr(splits, name).y for name in shards}
    sampler = sampler_for_method(
        "curriculum", np.arange(len(y["train"]), dtype=float), 16, pacing.preset("FEP(100)")
    )

    def train(x):
        return train_branch(
            RUN, sampler, (x["train"], y["train"]), (x["val"], y["val"]), (x["test"], y["test"]),
            num_classes=10, predict={"test": x["test"]},
        )  # fmt: skip

    on_disk = train({name: split["block1_out"] for name, split in shards.items()})
    in_ram = train(in_memory)
    assert on_disk.train_loss == in_ram.train_loss and on_disk.val_accuracy == in_ram.val_accuracy
    np.testing.assert_array_equal(on_disk.probabilities["test"], in_ram.probabilities["test"])


def test_the_cut_backbone_gives_the_branch_layer_and_holds_nothing_after_it(tiny_backbone):
    cut = cut_backbone(tiny_backbone, "block1_out")
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1)).astype("float32")
    expected = feature_extractor(tiny_backbone, ["block1_out"]).predict(images, verbose=0)["block1_out"]
    np.testing.assert_allclose(cut.predict(images, verbose=0), expected, rtol=1e-6)
    assert not {"block2_conv", "head_dense", "head_output"} & {layer.name for layer in cut.layers}
    assert not cut.trainable


def test_a_case_over_every_budget_trains_through_the_cut_backbone(monkeypatch):
    monkeypatch.setenv("MECL_FEATURE_MEMORY_GIB", "0")
    monkeypatch.setenv("MECL_FEATURE_DISK_GIB", "0")
    profile, case = get_profile("smoke"), Case("tiny_cnn", "digits", 1)
    data = prepare_case(profile, case)
    assert data.feature_mode == data.info["feature_mode"] == "backbone"
    assert data.features["train"].shape[1:] == (8, 8, 1)  # images: the cut backbone computes the features
    spec = RunSpec("vanilla_search", case, "vanilla", "adam", 1e-3, None, None, 0, "hparam")
    monkeypatch.setenv("MECL_FEATURE_MEMORY_GIB", "1")
    in_memory = prepare_case(profile, case)
    assert in_memory.feature_mode == "memory"
    assert spec.run_id(profile, data) != spec.run_id(profile, in_memory)  # the mode is part of the identity
