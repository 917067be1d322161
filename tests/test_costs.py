"""The MAC counter: exact on hand-counted networks, within 2 % of published counts for ImageNet networks."""

import keras
import pytest
from keras import layers

from mecl_utils.networks.backbones import build_tiny_cnn
from mecl_utils.networks.branches import build_branch, build_multi_exit
from mecl_utils.networks.costs import Cost, costs_frame, exit_costs, layer_macs, model_costs, total_macs


def _single_layer(layer, input_shape):
    inputs = keras.Input(input_shape)
    layer(inputs)
    return layer


def test_conv2d_same_counts_every_output_position():
    conv = _single_layer(layers.Conv2D(16, 3, padding="same"), (10, 10, 8))
    assert layer_macs(conv) == 10 * 10 * 16 * 3 * 3 * 8


def test_strided_valid_conv2d_counts_only_the_strided_positions():
    conv = _single_layer(layers.Conv2D(6, 3, strides=2), (11, 11, 4))  # 5×5 outputs
    assert layer_macs(conv) == 5 * 5 * 6 * 3 * 3 * 4


def test_dilated_conv2d_counts_its_smaller_output():
    conv = _single_layer(layers.Conv2D(3, 3, dilation_rate=2), (10, 10, 2))  # 6×6 outputs
    assert layer_macs(conv) == 6 * 6 * 3 * 3 * 3 * 2


def test_grouped_conv2d_reads_only_its_group_of_channels():
    conv = _single_layer(layers.Conv2D(8, 3, groups=4, padding="same"), (5, 5, 8))
    assert layer_macs(conv) == 5 * 5 * 8 * 3 * 3 * 2


def test_channels_first_conv2d_takes_positions_from_the_last_axes():
    conv = _single_layer(layers.Conv2D(4, 1, data_format="channels_first"), (3, 6, 5))
    assert layer_macs(conv) == 6 * 5 * 4 * 3


def test_depthwise_conv2d_counts_depth_multiplier_outputs_per_channel():
    conv = _single_layer(layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), (6, 6, 4))
    assert layer_macs(conv) == 6 * 6 * 4 * 2 * 3 * 3


def test_separable_conv2d_counts_depthwise_then_pointwise():
    conv = _single_layer(layers.SeparableConv2D(5, 3, padding="same"), (6, 6, 4))
    assert layer_macs(conv) == 6 * 6 * 4 * 3 * 3 + 6 * 6 * 4 * 5


def test_dense_on_a_rank_3_input_counts_once_per_position():
    dense = _single_layer(layers.Dense(3), (7, 4))
    assert layer_macs(dense) == 7 * 4 * 3


def test_biases_are_parameters_but_not_macs():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Dense(3, name="dense")(inputs))
    assert model_costs(model)[-1].macs == 12
    assert model_costs(model)[-1].params == 15


def test_batch_norm_pooling_and_activations_cost_no_macs_but_keep_their_parameters():
    inputs = keras.Input((4, 4, 2))
    x = layers.BatchNormalization(name="bn")(inputs)
    x = layers.ReLU(name="relu")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    rows = {row.name: row for row in model_costs(keras.Model(inputs, x))}
    assert [rows[name].macs for name in ("bn", "relu", "pool")] == [0, 0, 0]
    assert rows["bn"].params == 4 * 2


def test_an_uncounted_weight_layer_raises():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, layers.Conv2DTranspose(3, 2, name="up")(inputs))
    with pytest.raises(ValueError, match="Conv2DTranspose"):
        model_costs(model)


def test_an_unknown_spatial_size_raises():
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, layers.Conv2D(3, 1)(inputs))
    with pytest.raises(ValueError, match="fixed input shape"):
        model_costs(model)


def test_a_shared_layer_counts_macs_per_call_and_parameters_once():
    first, second = keras.Input((4,)), keras.Input((4,))
    dense = layers.Dense(3, name="shared")
    model = keras.Model([first, second], layers.Add()([dense(first), dense(second)]))
    (row,) = [row for row in model_costs(model) if row.name == "shared"]
    assert (row.macs, row.params) == (2 * 12, 15)


def _two_paths() -> keras.Model:
    """Input → path a (conv 1×1, 2→4) and path b (conv 1×1, 2→3) → concatenated, on 5×5 inputs."""
    inputs = keras.Input((5, 5, 2), name="images")
    a = layers.Conv2D(4, 1, use_bias=False, name="a")(inputs)
    b = layers.Conv2D(3, 1, use_bias=False, name="b")(inputs)
    return keras.Model(inputs, layers.Concatenate(name="joined")([a, b]))


def _pooled_dense_branch(feature_shape, units=2) -> keras.Model:
    features = keras.Input(feature_shape)
    pooled = layers.GlobalAveragePooling2D()(features)
    return keras.Model(features, layers.Dense(units, use_bias=False)(pooled), name="branch")


def test_exit_counts_only_the_path_its_layer_needs():
    costs = exit_costs(_two_paths(), "a", branch=_pooled_dense_branch((5, 5, 4)))
    assert costs.backbone == Cost(macs=5 * 5 * 2 * 4, params=2 * 4)
    assert costs.branch == Cost(macs=4 * 2, params=4 * 2)
    assert costs.total == Cost(macs=5 * 5 * 2 * 4 + 4 * 2, params=2 * 4 + 4 * 2)


def test_exit_after_a_join_counts_both_paths():
    costs = exit_costs(_two_paths(), "joined", branch=_pooled_dense_branch((5, 5, 7)))
    assert costs.backbone.macs == 5 * 5 * 2 * (4 + 3)


def test_full_network_exit_is_the_whole_model_without_a_branch():
    model = _two_paths()
    costs = exit_costs(model, None)
    assert costs.backbone == Cost(total_macs(model), model.count_params())
    assert costs.branch == Cost(0, 0)


def test_branch_of_the_wrong_shape_raises():
    with pytest.raises(ValueError, match="expects features"):
        exit_costs(_two_paths(), "a", branch=_pooled_dense_branch((5, 5, 3)))


def test_default_branch_is_the_fig_7_branch():
    # tiny CNN on 8×8×1: block1_out is 4×4×16; branch conv 64 3×3 same, pool to 2×2×64, dense 256, 128, 10.
    costs = exit_costs(build_tiny_cnn(10), "block1_out")
    assert costs.branch.macs == 4 * 4 * 64 * 3 * 3 * 16 + 256 * 256 + 256 * 128 + 128 * 10


def test_exit_given_by_network_data_set_and_branch_number_is_that_layer():
    model = build_tiny_cnn(10)
    assert exit_costs(model, ("tiny_cnn", "digits", 2)) == exit_costs(model, "block2_out")


def test_multi_exit_model_counts_backbone_and_each_nested_branch():
    classifier = build_tiny_cnn(10)
    branches = {
        name: build_branch(tuple(classifier.get_layer(name).output.shape[1:]), 10, name=f"branch{number}")
        for number, name in enumerate(("block1_out", "block2_out"), start=1)
    }
    multi_exit = build_multi_exit(classifier, branches)
    expected = total_macs(classifier) + sum(total_macs(branch) for branch in branches.values())
    assert total_macs(multi_exit) == expected
    assert sum(row.params for row in model_costs(multi_exit)) == multi_exit.count_params()
    assert "branch1/branch1_conv" in {row.name for row in model_costs(multi_exit)}


def test_mobilenet_macs_scale_with_the_square_of_the_input_size():
    # 64 and 224 are both multiples of MobileNet's stride 32, so every feature map shrinks by exactly 2/7.
    small = keras.applications.MobileNet(input_shape=(64, 64, 3), alpha=0.25, include_top=False, weights=None)
    native = keras.applications.MobileNet(
        input_shape=(224, 224, 3), alpha=0.25, include_top=False, weights=None
    )
    assert total_macs(small) * 7 * 7 == total_macs(native) * 2 * 2


def test_costs_frame_has_one_row_per_layer():
    model = _two_paths()
    frame = costs_frame(model_costs(model))
    assert list(frame.columns) == ["name", "kind", "macs", "params"]
    assert frame["macs"].sum() == total_macs(model)
    assert list(frame["name"]) == ["a", "b", "joined"]


# (keras.applications constructor, its arguments, published MACs, source). MACs include the classifier.
PUBLISHED = {
    "MobileNet-1.0-224": ("MobileNet", {}, 569e6, "Howard et al. 2017, Table 6"),
    "MobileNet-0.25-224": ("MobileNet", {"alpha": 0.25}, 41e6, "Howard et al. 2017, Table 6"),
    "ResNet152": ("ResNet152", {}, 11.3e9, "He et al. 2016, Table 1"),
    # The papers give no figure precise to 2 % (module docstring): torchvision's documented GFLOPS.
    "DenseNet201": ("DenseNet201", {}, 4.29e9, "torchvision densenet201"),
    "InceptionV3": ("InceptionV3", {}, 5.713e9, "torchvision inception_v3 (paper: ~5 billion)"),
    "EfficientNetB7": ("EfficientNetB7", {}, 37.746e9, "torchvision efficientnet_b7 (paper: 37 B)"),
}


@pytest.fixture(scope="module", params=list(PUBLISHED))
def imagenet_network(request):
    constructor, options, published, source = PUBLISHED[request.param]
    model = getattr(keras.applications, constructor)(weights=None, **options)
    return model, published, source


@pytest.mark.slow
def test_imagenet_macs_are_within_2_percent_of_the_published_count(imagenet_network):
    model, published, source = imagenet_network
    assert total_macs(model) == pytest.approx(published, rel=0.02), source


@pytest.mark.slow
def test_imagenet_parameters_equal_keras_count(imagenet_network):
    model, _, _ = imagenet_network
    assert sum(row.params for row in model_costs(model)) == model.count_params()


@pytest.mark.slow
def test_inception_exit_at_mixed0_needs_every_tower_before_it():
    model = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(299, 299, 3))
    names = [layer.name for layer in model.layers]
    before = set(names[: names.index("mixed0") + 1])
    expected = sum(row.macs for row in model_costs(model) if row.name in before)
    assert exit_costs(model, "mixed0").backbone.macs == expected
