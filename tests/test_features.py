"""Tests for protocol.features: branch layer names, feature extraction, and the per-split feature cache."""

import keras
import numpy as np
import pytest

from mecl_utils.networks.backbones import build_tiny_cnn
from mecl_utils.networks.branches import branch_layer
from mecl_utils.protocol import features, trained_networks
from mecl_utils.protocol.features import cached_features, extract_features
from mecl_utils.protocol.profiles import get_profile

PROFILE = get_profile("smoke").replace(backbone_epochs=1, teacher_epochs=1)
LAYERS = ["block1_out", "block2_out"]
SHAPES = {"block1_out": (4, 4, 16), "block2_out": (2, 2, 32)}  # 8×8 digits, default width 16


@pytest.fixture(scope="module")
def data(smoke_digits):
    return smoke_digits


@pytest.fixture(scope="module")
def classifier():
    """An untrained tiny CNN: features only need a fixed network, not a good one."""
    keras.utils.set_random_seed(0)
    return build_tiny_cnn(10, input_shape=(8, 8, 1))


def all_features(classifier, data, key="backbone-key", layers=LAYERS):
    return cached_features(PROFILE, "tiny_cnn", *data, key, layers, classifier=classifier)


@pytest.fixture(autouse=True)
def cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(
    ("network", "dataset", "number", "layer"),
    [
        ("tiny_cnn", "digits", 1, "block1_out"),
        ("tiny_cnn", "cifar10", 2, "block2_out"),
        ("mobilenet", "cifar10", 1, "conv_dw_4_relu"),
        ("densenet201", "cifar10", 2, "conv4_block1_concat"),
        ("densenet201", "cifar100", 2, "conv5_block1_concat"),
        ("densenet201", "cifar100-coarse", 2, "conv5_block1_concat"),  # coarse labels: CIFAR-100 placements
        ("densenet201", "digits", 2, "conv4_block1_concat"),  # digits: CIFAR-10 placements
        ("inceptionv3", "cifar100", 1, "mixed0"),
    ],
)
def test_branch_layer_names_the_table_ii_placement(network, dataset, number, layer):
    assert branch_layer(network, dataset, number) == layer


@pytest.mark.parametrize(
    ("network", "dataset", "number", "message"),
    [
        ("efficientnetb7", "cifar10", 1, "choose one of .*tiny_cnn"),
        ("mobilenet", "imagenet", 1, "choose one of .*cifar100-coarse"),
        ("mobilenet", "cifar10", 3, r"branches \[1, 2\]"),
        ("tiny_cnn", "digits", 0, r"branches \[1, 2\]"),
    ],
)
def test_branch_layer_rejects_unknown_choices_listing_valid_ones(network, dataset, number, message):
    with pytest.raises(ValueError, match=message):
        branch_layer(network, dataset, number)


def test_extract_features_gives_float32_maps_per_layer(classifier, data):
    x = data[1].train.x[:300]
    result = extract_features(classifier, LAYERS, x, batch_size=128)
    assert {name: array.shape for name, array in result.items()} == {
        name: (300, *shape) for name, shape in SHAPES.items()
    }
    assert all(array.dtype == np.float32 for array in result.values())


def test_extract_features_does_not_depend_on_batch_size(classifier, data):
    x = data[1].val.x[:50]
    whole = extract_features(classifier, ["block2_out"], x)["block2_out"]
    batched = extract_features(classifier, ["block2_out"], x, batch_size=7)["block2_out"]
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-6)


def test_cached_features_covers_every_split_with_its_row_count(classifier, data):
    result = all_features(classifier, data)
    assert list(result) == ["train", "val", "hparam", "test"]
    for split_name, by_layer in result.items():
        n = len(getattr(data[1], split_name))
        assert {name: a.shape for name, a in by_layer.items()} == {k: (n, *s) for k, s in SHAPES.items()}


def test_cached_feature_rows_follow_the_split_order(classifier, data):
    splits = data[1]
    result = all_features(classifier, data)
    rows = [0, 17, len(splits.train) - 1]
    direct = extract_features(classifier, ["block1_out"], splits.train.x[rows])["block1_out"]
    np.testing.assert_allclose(result["train"]["block1_out"][rows], direct, rtol=1e-5, atol=1e-6)


def test_second_call_reads_the_cache_without_extracting(classifier, data, cache_root, monkeypatch):
    dataset, splits = data
    first = all_features(classifier, data)
    assert len(list((cache_root / "features").glob("*.npz"))) == 4 * len(LAYERS)
    monkeypatch.setattr(features, "extract_features", lambda *a, **k: pytest.fail("features were recomputed"))
    second = cached_features(PROFILE, "tiny_cnn", dataset, splits, "backbone-key", LAYERS)
    for split_name in first:
        for layer in LAYERS:
            np.testing.assert_array_equal(second[split_name][layer], first[split_name][layer])


def test_a_different_backbone_key_gets_its_own_entries(classifier, data, cache_root):
    all_features(classifier, data, key="backbone-a", layers=["block1_out"])
    all_features(classifier, data, key="backbone-b", layers=["block1_out"])
    assert len(list((cache_root / "features").glob("*.npz"))) == 2 * 4


def test_without_classifier_the_profile_backbone_is_used(data):
    dataset, splits = data
    key = trained_networks.backbone_key(PROFILE, "tiny_cnn", dataset, splits, seed=PROFILE.seed)
    result = cached_features(PROFILE, "tiny_cnn", dataset, splits, key, ["block2_out"])
    backbone = trained_networks.trained_backbone(PROFILE, "tiny_cnn", dataset, splits, seed=PROFILE.seed)
    direct = extract_features(backbone, ["block2_out"], splits.test.x)["block2_out"]
    np.testing.assert_allclose(result["test"]["block2_out"], direct, rtol=1e-5, atol=1e-6)


def test_without_classifier_an_unknown_key_asks_for_the_model(data):
    with pytest.raises(ValueError, match="pass classifier="):
        cached_features(PROFILE, "tiny_cnn", *data, "not-the-profile-backbone", ["block1_out"])
