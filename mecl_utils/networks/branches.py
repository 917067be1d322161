"""Early-exit branches: where they attach (Table II), what they are (Fig. 7), and the multi-exit model.

Implements, for Bakhtiarnia, Zhang & Iosifidis (2021):

- Table II, where the two branches of each backbone sit (``TABLE_II``), resolved to Keras layer names by a
  counting rule (``resolve_placement``, ``PLACEMENTS``);
- Fig. 7, the early-exit branch of Hu et al. (2020): Conv2D → MaxPooling2D → Flatten → Dense → Dropout →
  Dense → Dropout → Dense(softmax) (``build_branch``);
- Sec. II-A/III, classifier-wise training: a frozen backbone with one output per exit (``build_multi_exit``),
  and the activations a branch reads (``feature_extractor``), which the engine computes once and caches.

Counting rule for Table II. "Layer k of N" counts *weight layers* (layers with a kernel: Conv2D,
DepthwiseConv2D, Dense) in Keras' layer order, from 1; N includes the final dense layer. The branch attaches
to the first *block output* at or after the k-th weight layer: the Concatenate closing a DenseNet dense layer
(or the AveragePooling2D closing a transition), the ``*_out`` ReLU after a ResNet residual add, the ReLU
closing a MobileNet conv-BN-ReLU unit (MobileNet's 28 layers count every depthwise and pointwise convolution
as its own layer). InceptionV3 is placed by "n-th Filter Concat", so there k counts the ``mixed<i>`` layers.

============  ==========  ===============================  ===========================
Backbone      Table II    k-th weight layer (Keras name)   branch input (Keras layer)
============  ==========  ===============================  ===========================
DenseNet201   15 of 201   ``conv3_block1_1_conv``          ``conv3_block1_concat``
DenseNet201   40 of 201   ``conv4_block1_1_conv``          ``conv4_block1_concat``
DenseNet201   137 of 201  ``conv5_block1_1_conv``          ``conv5_block1_concat``
MobileNetV1   8 of 28     ``conv_dw_4``                    ``conv_dw_4_relu``
MobileNetV1   14 of 28    ``conv_dw_7``                    ``conv_dw_7_relu``
ResNet152     13 of 152   ``conv3_block1_3_conv``          ``conv3_block1_out``
ResNet152     38 of 152   ``conv4_block2_1_conv``          ``conv4_block2_out``
InceptionV3   1st concat  --                               ``mixed0``
InceptionV3   2nd concat  --                               ``mixed1``
============  ==========  ===============================  ===========================

The totals check the rule: 1 + 2·(6+12+48+32) + 3 + 1 = 201 for DenseNet201, 1 + 2·13 + 1 = 28 for
MobileNetV1, and 1 + 3·50 + 1 = 152 for ResNet152, which therefore leaves out Keras' four projection
shortcuts (``conv*_block1_0_conv``): they are not on the main path the paper's "152" counts. Counting them
would move layer 38 to ``conv4_block1_out``; layer 13 is ``conv3_block1_out`` either way. For MobileNet the
rule gives the depthwise halves ``conv_dw_4``/``conv_dw_7``; reading "block" as the depthwise-separable pair
would give ``conv_pw_4_relu``/``conv_pw_7_relu`` instead (pass that name to use it).

The other reading. "After layer k" could also mean the branch reads what layer k itself reads: the output of
the layer that feeds the k-th weight layer (``input_of_weight_layer``, same count, projection shortcuts
again left out; ``INPUT_PLACEMENTS`` holds it for Table II). It is not a block output everywhere:

============  ==========  ===============================  ===========================
Backbone      Table II    k-th weight layer (Keras name)   input of it (Keras layer)
============  ==========  ===============================  ===========================
DenseNet201   15 of 201   ``conv3_block1_1_conv``          ``conv3_block1_0_relu``
DenseNet201   40 of 201   ``conv4_block1_1_conv``          ``conv4_block1_0_relu``
DenseNet201   137 of 201  ``conv5_block1_1_conv``          ``conv5_block1_0_relu``
MobileNetV1   8 of 28     ``conv_dw_4``                    ``conv_pad_4``
MobileNetV1   14 of 28    ``conv_dw_7``                    ``conv_pw_6_relu``
ResNet152     13 of 152   ``conv3_block1_3_conv``          ``conv3_block1_2_relu``
ResNet152     38 of 152   ``conv4_block2_1_conv``          ``conv4_block1_out``
============  ==========  ===============================  ===========================

In DenseNet it is the BN-ReLU opening the dense layer (applied to the transition's pooled output), in
MobileNet the zero padding before a strided depthwise convolution (``conv_pad_4``, the padded
``conv_pw_3_relu``) or the ReLU closing the previous unit, in ResNet a ReLU inside the bottleneck for layer
13 and the output of the previous block for layer 38. We use the first reading (``PLACEMENTS``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import keras
from keras import layers

from mecl_utils.networks.backbones import get_layer

__all__ = [
    "INPUT_PLACEMENTS",
    "PLACEMENTS",
    "TABLE_II",
    "TINY_CNN_BRANCH_LAYERS",
    "branch_layer",
    "build_branch",
    "build_multi_exit",
    "feature_extractor",
    "input_of_weight_layer",
    "resolve_placement",
]

# Table II as printed: (backbone, dataset, branch number) -> "Layer k" (InceptionV3: k-th Filter Concat).
TABLE_II: dict[tuple[str, str, int], int] = {
    ("densenet201", "cifar10", 1): 15, ("densenet201", "cifar10", 2): 40,
    ("densenet201", "cifar100", 1): 40, ("densenet201", "cifar100", 2): 137,
    ("mobilenet", "cifar10", 1): 8, ("mobilenet", "cifar10", 2): 14,
    ("mobilenet", "cifar100", 1): 8, ("mobilenet", "cifar100", 2): 14,
    ("resnet152", "cifar10", 1): 13, ("resnet152", "cifar10", 2): 38,
    ("resnet152", "cifar100", 1): 13, ("resnet152", "cifar100", 2): 38,
    ("inceptionv3", "cifar10", 1): 1, ("inceptionv3", "cifar10", 2): 2,
    ("inceptionv3", "cifar100", 1): 1, ("inceptionv3", "cifar100", 2): 2,
}  # fmt: skip

_BRANCH_LAYER = {
    ("densenet201", 15): "conv3_block1_concat", ("densenet201", 40): "conv4_block1_concat",
    ("densenet201", 137): "conv5_block1_concat",
    ("mobilenet", 8): "conv_dw_4_relu", ("mobilenet", 14): "conv_dw_7_relu",
    ("resnet152", 13): "conv3_block1_out", ("resnet152", 38): "conv4_block2_out",
    ("inceptionv3", 1): "mixed0", ("inceptionv3", 2): "mixed1",
}  # fmt: skip
# Table II resolved by the counting rule (tests check that resolve_placement gives the same names).
PLACEMENTS: dict[tuple[str, str, int], str] = {
    key: _BRANCH_LAYER[key[0], layer_number] for key, layer_number in TABLE_II.items()
}

_INPUT_LAYER = {
    ("densenet201", 15): "conv3_block1_0_relu", ("densenet201", 40): "conv4_block1_0_relu",
    ("densenet201", 137): "conv5_block1_0_relu",
    ("mobilenet", 8): "conv_pad_4", ("mobilenet", 14): "conv_pw_6_relu",
    ("resnet152", 13): "conv3_block1_2_relu", ("resnet152", 38): "conv4_block1_out",
}  # fmt: skip
# The other reading of Table II, "the input of layer k" (tests check it against input_of_weight_layer).
# InceptionV3 is left out: there Table II counts filter concatenations, not weight layers.
INPUT_PLACEMENTS: dict[tuple[str, str, int], str] = {
    key: _INPUT_LAYER[key[0], layer_number]
    for key, layer_number in TABLE_II.items()
    if key[0] != "inceptionv3"
}

_CLOSES_BLOCK: dict[str, Callable[[keras.layers.Layer], bool]] = {
    "densenet201": lambda layer: isinstance(layer, (layers.Concatenate, layers.AveragePooling2D)),
    "resnet152": lambda layer: layer.name.endswith("_out"),
    "mobilenet": lambda layer: isinstance(layer, layers.ReLU),
}


def _weight_layers(model: keras.Model, network: str) -> list[keras.layers.Layer]:
    """The layers Table II counts for ``network``, in Keras order (module docstring)."""
    if network not in _CLOSES_BLOCK:
        valid = [*sorted(_CLOSES_BLOCK), "inceptionv3"]
        raise ValueError(f"Table II places branches on {valid} only, not on {network!r}.")
    return [
        layer
        for layer in model.layers
        if hasattr(layer, "kernel") and not (network == "resnet152" and layer.name.endswith("_0_conv"))
    ]


def _check_layer_number(candidates: list, network: str, layer_number: int) -> None:
    if not 1 <= layer_number <= len(candidates):
        raise ValueError(f"layer_number must be in 1..{len(candidates)} for {network!r}, got {layer_number}.")


def resolve_placement(model: keras.Model, network: str, layer_number: int) -> str:
    """The block output where a branch placed "after layer ``layer_number``" attaches (module docstring)."""
    if network == "inceptionv3":
        concats = [layer.name for layer in model.layers if re.fullmatch(r"mixed\d+", layer.name)]
        _check_layer_number(concats, network, layer_number)
        return concats[layer_number - 1]
    candidates = _weight_layers(model, network)
    _check_layer_number(candidates, network, layer_number)
    start = model.layers.index(candidates[layer_number - 1])
    return next(layer.name for layer in model.layers[start:] if _CLOSES_BLOCK[network](layer))


def input_of_weight_layer(model: keras.Model, network: str, layer_number: int) -> str:
    """The layer whose output feeds the ``layer_number``-th weight layer: the other reading of Table II."""
    if network == "inceptionv3":
        raise ValueError("Table II counts filter concatenations for 'inceptionv3', not weight layers.")
    candidates = _weight_layers(model, network)
    _check_layer_number(candidates, network, layer_number)
    layer_input = candidates[layer_number - 1].input
    return next(layer.name for layer in model.layers if layer.output is layer_input)


def feature_extractor(model: keras.Model, layer_names: Sequence[str]) -> keras.Model:
    """A model from ``model``'s input to a dict {layer name: activation} at ``layer_names``."""
    outputs = {name: get_layer(model, name).output for name in layer_names}
    return keras.Model(model.inputs, outputs, name="features")


def build_branch(
    feature_shape: tuple[int, ...],
    num_classes: int,
    *,
    conv_filters: int = 64,
    kernel_size: int = 3,
    pool_size: int = 2,
    dense_units: tuple[int, int] = (256, 128),
    dropout: float = 0.5,
    name: str = "branch",
) -> keras.Model:
    """The Fig. 7 early exit (Hu et al., 2020) on features of ``feature_shape`` (H, W, C).

    The paper gives the layer types only; the widths are ours. "same" padding lets the branch sit on
    feature maps as small as 1×1, so the flattened size is ceil(H/pool) · ceil(W/pool) · conv_filters.
    """
    features = keras.Input(tuple(feature_shape), name=f"{name}_features")
    conv = layers.Conv2D(conv_filters, kernel_size, padding="same", activation="relu", name=f"{name}_conv")
    x = conv(features)
    x = layers.MaxPooling2D(pool_size, padding="same", name=f"{name}_pool")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    for index, units in enumerate(dense_units, start=1):
        x = layers.Dense(units, activation="relu", name=f"{name}_dense{index}")(x)
        x = layers.Dropout(dropout, name=f"{name}_dropout{index}")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name=f"{name}_output")(x)
    return keras.Model(features, outputs, name=name)


def build_multi_exit(classifier: keras.Model, branches: dict[str, keras.Model]) -> keras.Model:
    """Classifier-wise multi-exit model: outputs are the branches (in dict order), then the final exit.

    Freezes ``classifier`` in place (``trainable=False``, BatchNormalization in inference mode): in
    classifier-wise training the backbone never changes again, only the branches learn.
    """
    names = [branch.name for branch in branches.values()]
    if len(set(names)) != len(names):
        raise ValueError(f"Branch model names must be unique, got {names}: pass name=... to build_branch.")
    classifier.trainable = False
    exits = []
    for layer_name, branch in branches.items():
        features = get_layer(classifier, layer_name).output
        shape = tuple(features.shape[1:])
        if shape != tuple(branch.input_shape[1:]):
            raise ValueError(
                f"Branch {branch.name!r} expects features {branch.input_shape[1:]} but {layer_name!r} "
                f"outputs {shape}: build it with build_branch(feature_shape={shape}, ...)."
            )
        exits.append(branch(features))
    return keras.Model(classifier.inputs, [*exits, classifier.output], name=f"{classifier.name}_multi_exit")


TINY_CNN_BRANCH_LAYERS = {1: "block1_out", 2: "block2_out"}
# The data set whose Table II placements a data set uses.
_PLACEMENT_DATASET = {"cifar10": "cifar10", "cifar100": "cifar100", "cifar100-coarse": "cifar100"}
_PLACEMENT_DATASET["digits"] = "cifar10"


def branch_layer(network: str, dataset_name: str, branch_number: int) -> str:
    """The layer whose output branch ``branch_number`` of ``network`` reads, on ``dataset_name``."""
    if network == "tiny_cnn":
        if branch_number not in TINY_CNN_BRANCH_LAYERS:
            raise ValueError(f"tiny_cnn has branches {list(TINY_CNN_BRANCH_LAYERS)}, not {branch_number!r}.")
        return TINY_CNN_BRANCH_LAYERS[branch_number]
    networks = sorted({key[0] for key in PLACEMENTS})
    if network not in networks:
        raise ValueError(
            f"No branch placements for network {network!r}: choose one of {['tiny_cnn', *networks]}."
        )
    if dataset_name not in _PLACEMENT_DATASET:
        raise ValueError(
            f"No branch placements for data set {dataset_name!r}: choose one of {list(_PLACEMENT_DATASET)}."
        )
    key = (network, _PLACEMENT_DATASET[dataset_name], branch_number)
    if key not in PLACEMENTS:
        numbers = sorted({k[2] for k in PLACEMENTS if k[:2] == key[:2]})
        raise ValueError(f"{network} has branches {numbers} (Table II), not {branch_number!r}.")
    return PLACEMENTS[key]
