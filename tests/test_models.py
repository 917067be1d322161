"""Tests for networks.backbones: Table I specs, Table II placements, the Fig. 7 branch, multi-exit models."""

import functools
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from mecl_utils.networks import backbones
from mecl_utils.networks.backbones import (
    ImageNetPreprocessing,
    backbone_model,
    build_classifier,
    build_tiny_cnn,
    mobilenet_weights_path,
    network_spec,
)
from mecl_utils.networks.branches import (
    INPUT_PLACEMENTS,
    PLACEMENTS,
    TABLE_II,
    build_branch,
    build_multi_exit,
    feature_extractor,
    input_of_weight_layer,
    resolve_placement,
)

OFFLINE_MOBILENET = Path(__file__).resolve().parents[2] / "shared" / "data" / "mobilenet_2_5_224_tf_no_top.h5"
SMALLEST_IMAGE_SIZE = {"densenet201": 32, "mobilenet": 32, "resnet152": 32, "inceptionv3": 75}
SMALLEST_IMAGE_SIZE["efficientnetb7"] = 32
FAST_NETWORKS = {"mobilenet"}  # the others take 2-5 s to build on 2 cores


def by_network(values, network_of=lambda value: value):
    """pytest params, marked slow unless they only build MobileNet."""
    return [
        pytest.param(
            value,
            marks=() if network_of(value) in FAST_NETWORKS else pytest.mark.slow,
            id="-".join(map(str, value)) if isinstance(value, tuple) else value,
        )
        for value in values
    ]


@functools.cache
def small_classifier(network):
    """A 10-class classifier with random weights at the smallest image size Keras allows (built once)."""
    return build_classifier(network, 10, image_size=SMALLEST_IMAGE_SIZE[network], weights=None)


def small_mobilenet():
    return build_classifier("mobilenet", 10, image_size=32, weights=None, alpha=0.25)


def weighted_layers(model):
    return [layer for layer in backbone_model(model).layers if layer.weights]


def test_network_specs_follow_table_i():
    assert network_spec("densenet201").batch_size == 32
    assert network_spec("mobilenet").batch_size == 64
    assert network_spec("inceptionv3").paper_accuracy_cifar10 == 0.9656
    assert network_spec("resnet152").paper_accuracy_cifar100 == 0.8225
    assert network_spec("efficientnetb7").frozen_layers == "first five blocks"


def test_unknown_network_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"'densenet201', 'efficientnetb7', 'inceptionv3', 'mobilenet'"):
        network_spec("mobilenetv2")


def test_placement_presets_are_the_documented_layers():
    assert sorted(set(PLACEMENTS.values())) == [
        "conv3_block1_concat",
        "conv3_block1_out",
        "conv4_block1_concat",
        "conv4_block2_out",
        "conv5_block1_concat",
        "conv_dw_4_relu",
        "conv_dw_7_relu",
        "mixed0",
        "mixed1",
    ]
    assert PLACEMENTS["densenet201", "cifar100", 2] == "conv5_block1_concat"
    assert PLACEMENTS["resnet152", "cifar10", 2] == "conv4_block2_out"
    assert len(PLACEMENTS) == 16


@pytest.mark.parametrize("key", by_network(TABLE_II, network_of=lambda key: key[0]))
def test_placement_preset_equals_the_counting_rule(key):
    network = key[0]
    assert resolve_placement(small_classifier(network), network, TABLE_II[key]) == PLACEMENTS[key]


@pytest.mark.parametrize("key", by_network(PLACEMENTS, network_of=lambda key: key[0]))
def test_placement_layer_can_be_tapped_at_the_smallest_size(key):
    features = feature_extractor(small_classifier(key[0]), [PLACEMENTS[key]]).output[PLACEMENTS[key]]
    assert len(features.shape) == 4 and min(features.shape[1:]) >= 1


@pytest.mark.parametrize("key", by_network(INPUT_PLACEMENTS, network_of=lambda key: key[0]))
def test_input_reading_preset_equals_input_of_weight_layer(key):
    network = key[0]
    assert input_of_weight_layer(small_classifier(network), network, TABLE_II[key]) == INPUT_PLACEMENTS[key]


def test_input_of_weight_layer_is_the_layer_feeding_it():
    images = keras.Input((8, 8, 3), name="images")
    x = layers.Conv2D(4, 3, padding="same", name="conv1_conv")(images)
    x = layers.ReLU(name="conv1_relu")(x)
    shortcut = layers.Conv2D(4, 1, name="x_0_conv")(x)  # a ResNet projection: not counted for resnet152
    y = layers.Conv2D(4, 1, name="x_1_conv")(x)
    y = layers.ReLU(name="x_1_relu")(y)
    y = layers.Conv2D(4, 1, name="x_2_conv")(y)
    x = layers.Add(name="x_out")([shortcut, y])
    model = keras.Model(images, layers.Dense(2, name="head")(layers.Flatten(name="flat")(x)))
    assert [input_of_weight_layer(model, "resnet152", k) for k in (1, 2, 3, 4)] == [
        "images",
        "conv1_relu",
        "x_1_relu",
        "flat",
    ]
    assert input_of_weight_layer(model, "mobilenet", 5) == "flat"  # counts x_0_conv, so head is the 5th


def test_input_reading_has_no_weight_layer_count_for_inceptionv3():
    with pytest.raises(ValueError, match="filter concatenations"):
        input_of_weight_layer(small_mobilenet(), "inceptionv3", 1)


def test_counting_rule_stops_at_the_next_block_output():
    # Weight layer 3 of MobileNet is conv_pw_1; its unit closes with conv_pw_1_relu.
    assert resolve_placement(small_mobilenet(), "mobilenet", 3) == "conv_pw_1_relu"


def test_counting_rule_rejects_out_of_range_layer_numbers():
    with pytest.raises(ValueError, match=r"layer_number must be in 1\.\.\d+ for 'mobilenet', got 40"):
        resolve_placement(small_mobilenet(), "mobilenet", 40)


def test_unknown_layer_name_suggests_near_names():
    with pytest.raises(ValueError, match="conv_dw_4_relu"):
        feature_extractor(small_mobilenet(), ["conv_dw_4_rel"])


@pytest.mark.parametrize("network", by_network(["densenet201", "resnet152"]))
def test_densenet_and_resnet_train_only_batch_normalization(network):
    trainable = {type(layer) for layer in weighted_layers(small_classifier(network)) if layer.trainable}
    frozen = {type(layer) for layer in weighted_layers(small_classifier(network)) if not layer.trainable}
    assert trainable == {layers.BatchNormalization}
    assert layers.BatchNormalization not in frozen


@pytest.mark.slow
def test_efficientnetb7_freezes_the_stem_and_blocks_1_to_5():
    classifier = small_classifier("efficientnetb7")
    early = [layer for layer in weighted_layers(classifier) if re.match(r"stem_|block[1-5]", layer.name)]
    late = [layer for layer in weighted_layers(classifier) if re.match(r"block[67]|top_", layer.name)]
    assert early and not any(layer.trainable for layer in early)
    assert late and all(layer.trainable for layer in late)
    assert classifier.get_layer("block5j_project_conv").trainable is False
    assert classifier.get_layer("block6a_expand_conv").trainable is True


@pytest.mark.parametrize("network", by_network(["mobilenet", "inceptionv3"]))
def test_mobilenet_and_inceptionv3_freeze_no_layer(network):
    assert all(layer.trainable for layer in weighted_layers(small_classifier(network)))


def test_classifier_turns_uint8_images_into_class_probabilities():
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    probabilities = small_mobilenet().predict(images, verbose=0)
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("network", ["densenet201", "resnet152", "inceptionv3"])
def test_preprocessing_layer_matches_keras_preprocess_input(network):
    images = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    expected = network_spec(network).preprocess_input(images.copy())
    np.testing.assert_allclose(ImageNetPreprocessing(network)(images), expected, rtol=1e-5, atol=1e-4)


def test_image_size_below_the_keras_minimum_fails():
    with pytest.raises(ValueError, match="image_size >= 75"):
        build_classifier("inceptionv3", 10, image_size=32, weights=None)


def test_alpha_is_only_for_mobilenet():
    with pytest.raises(ValueError, match=r"leave it at 1\.0"):
        build_classifier("resnet152", 10, image_size=32, weights=None, alpha=0.5)


def test_missing_weights_file_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights='imagenet'"):
        build_classifier("mobilenet", 10, image_size=32, weights=tmp_path / "absent.h5")


def test_branch_layers_follow_fig7():
    branch = build_branch((4, 4, 32), 7)
    assert [type(layer) for layer in branch.layers] == [
        layers.InputLayer,
        layers.Conv2D,
        layers.MaxPooling2D,
        layers.Flatten,
        layers.Dense,
        layers.Dropout,
        layers.Dense,
        layers.Dropout,
        layers.Dense,
    ]
    assert branch.output.shape == (None, 7)


@pytest.mark.parametrize(
    ("feature_shape", "flat_size"),
    [((4, 4, 32), 256), ((2, 2, 128), 64), ((7, 7, 256), 1024), ((1, 1, 928), 64)],
)
def test_branch_flatten_size_follows_the_feature_shape(feature_shape, flat_size):
    branch = build_branch(feature_shape, 10, conv_filters=64, pool_size=2)
    assert branch.get_layer("branch_flatten").output.shape == (None, flat_size)


def test_multi_exit_outputs_each_branch_then_the_final_exit():
    classifier = small_mobilenet()
    branches = {
        "conv_dw_4_relu": build_branch((4, 4, 32), 10, name="exit1"),
        "conv_dw_7_relu": build_branch((2, 2, 128), 10, name="exit2"),
    }
    multi_exit = build_multi_exit(classifier, branches)
    assert multi_exit.output_names == ["exit1", "exit2", "head_output"]
    assert classifier.trainable_weights == []


def test_multi_exit_rejects_a_branch_built_for_another_feature_shape():
    with pytest.raises(ValueError, match=r"feature_shape=\(4, 4, 32\)"):
        build_multi_exit(small_mobilenet(), {"conv_dw_4_relu": build_branch((8, 8, 32), 10)})


@pytest.mark.slow
def test_branch_fit_leaves_every_backbone_weight_unchanged():
    keras.utils.set_random_seed(0)
    classifier = small_mobilenet()
    branch = build_branch((4, 4, 32), 10)
    multi_exit = build_multi_exit(classifier, {"conv_dw_4_relu": branch})
    backbone_before = [weight.numpy().copy() for weight in classifier.weights]
    branch_before = [weight.numpy().copy() for weight in branch.weights]
    multi_exit.compile(optimizer="adam", loss=["sparse_categorical_crossentropy"] * 2)
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(0, 255, (8, 32, 32, 3)), rng.integers(0, 10, 8)
    multi_exit.fit(images, [labels, labels], batch_size=4, epochs=1, verbose=0)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(backbone_before, classifier.weights, strict=True))
    assert not any(np.array_equal(a, w.numpy()) for a, w in zip(branch_before, branch.weights, strict=True))


def test_weights_path_uses_mecl_weights_dir(tmp_path, monkeypatch):
    (tmp_path / "mobilenet_2_5_224_tf_no_top.h5").touch()
    monkeypatch.setenv("MECL_WEIGHTS_DIR", str(tmp_path))
    assert mobilenet_weights_path() == str(tmp_path / "mobilenet_2_5_224_tf_no_top.h5")


def test_weights_path_falls_back_to_the_keras_download(tmp_path, monkeypatch):
    monkeypatch.delenv("MECL_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(backbones, "SHARED_DATA_DIR", tmp_path / "no-shared-data")
    assert mobilenet_weights_path() == "imagenet"


def test_weights_path_with_an_explicit_dir_lacking_the_file_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mobilenet_2_5_224_tf_no_top\.h5"):
        mobilenet_weights_path(tmp_path)


@pytest.mark.skipif(not OFFLINE_MOBILENET.is_file(), reason=f"no offline weights at {OFFLINE_MOBILENET}")
def test_offline_mobilenet_weights_are_loaded():
    h5py = pytest.importorskip("h5py")
    classifier = build_classifier("mobilenet", 10, image_size=32, weights=OFFLINE_MOBILENET, alpha=0.25)
    with h5py.File(OFFLINE_MOBILENET, "r") as stored:
        layer_names = [name.decode() for name in stored.attrs["layer_names"]]
        for layer_name in layer_names:
            group = stored[layer_name]
            expected = [group[name][()] for name in group.attrs["weight_names"]]
            if not expected:  # the input layer
                continue
            loaded = [weight.numpy() for weight in classifier.get_layer(layer_name).weights]
            assert all(np.array_equal(e, w) for e, w in zip(expected, loaded, strict=True)), layer_name
    assert "conv_pw_13_bn" in layer_names
    assert backbone_model(classifier).count_params() == 218_544


def test_tiny_cnn_has_the_two_smoke_branch_layers():
    model = build_tiny_cnn(10)
    shapes = {name: tuple(model.get_layer(name).output.shape[1:]) for name in ("block1_out", "block2_out")}
    assert shapes == {"block1_out": (4, 4, 16), "block2_out": (2, 2, 32)}
    assert model.output.shape[-1] == 10


def _tiny_compiled(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build_tiny_cnn(10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _traced_train_steps(model: keras.Model, monkeypatch, x, y) -> int:
    traced = []
    step = type(model).train_step
    monkeypatch.setattr(type(model), "train_step", lambda self, data: traced.append(1) or step(self, data))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    return len(traced)


def test_a_model_built_for_fit_traces_its_training_step_once(monkeypatch):
    x, y = np.random.default_rng(0).integers(0, 256, (16, 8, 8, 1), dtype=np.uint8), np.arange(16) % 10
    unbuilt = _tiny_compiled(0)
    built = _tiny_compiled(0)
    backbones.build_for_fit(built, (x, y))
    assert _traced_train_steps(unbuilt, monkeypatch, x, y) == 2  # Keras creates state in the first trace
    assert _traced_train_steps(built, monkeypatch, x, y) == 1
    for a, b in zip(unbuilt.weights, built.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
