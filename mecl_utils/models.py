"""Backbones, early-exit branches and multi-exit models of the paper, built from ``keras.applications``.

Implements, for Bakhtiarnia, Zhang & Iosifidis (2021):

- Sec. III, the transfer-learning recipe for teachers and backbones: an ImageNet model without its top,
  global average pooling, two dense layers with Dropout in between (``build_classifier``);
- Table I, batch size, frozen layers and reported test accuracy of each network (``NETWORKS``);
- Table II, where the two branches of each backbone sit (``TABLE_II``), resolved to Keras layer names by a
  counting rule (``resolve_placement``, ``PLACEMENTS``);
- Fig. 7, the early-exit branch of Hu et al. (2020): Conv2D → MaxPooling2D → Flatten → Dense → Dropout →
  Dense → Dropout → Dense(softmax) (``build_branch``);
- Sec. II/III, classifier-wise training: a frozen backbone with one output per exit (``build_multi_exit``).

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

Input sizes: Keras' minimum is 32×32 for every network here except InceptionV3 (75×75); the native ImageNet
sizes are 224 (DenseNet201, MobileNet, ResNet152), 299 (InceptionV3) and 600 (EfficientNetB7).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

__all__ = [
    "NETWORKS",
    "PLACEMENTS",
    "TABLE_II",
    "ImageNetPreprocessing",
    "NetworkSpec",
    "backbone_model",
    "build_branch",
    "build_classifier",
    "build_multi_exit",
    "feature_extractor",
    "mobilenet_weights_path",
    "network_spec",
    "resolve_placement",
]

# The repository's sibling ``../shared/data`` holds the offline MobileNet weights on the project's machines.
SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class NetworkSpec:
    """One row of Table I plus what Keras needs to build the network."""

    name: str
    constructor: str  # keras.applications.<constructor>
    module: str  # keras.applications.<module>.preprocess_input
    batch_size: int
    frozen_layers: str  # Table I wording
    paper_accuracy_cifar10: float
    paper_accuracy_cifar100: float
    native_size: int
    min_size: int

    @property
    def application(self) -> Callable[..., keras.Model]:
        return getattr(keras.applications, self.constructor)

    @property
    def preprocess_input(self) -> Callable:
        return getattr(keras.applications, self.module).preprocess_input


# Table I. The paper prints ResNet152's CIFAR-100 accuracy as "82.25&" (a typo for 82.25%).
NETWORKS: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        NetworkSpec("densenet201", "DenseNet201", "densenet", 32, "all except batch normalization",
                    0.9648, 0.8253, 224, 32),
        NetworkSpec("mobilenet", "MobileNet", "mobilenet", 64, "none", 0.9428, 0.7691, 224, 32),
        NetworkSpec("resnet152", "ResNet152", "resnet", 32, "all except batch normalization",
                    0.9536, 0.8225, 224, 32),
        NetworkSpec("inceptionv3", "InceptionV3", "inception_v3", 64, "none", 0.9656, 0.8380, 299, 75),
        NetworkSpec("efficientnetb7", "EfficientNetB7", "efficientnet", 32, "first five blocks",
                    0.9650, 0.8376, 600, 32),
    )
}  # fmt: skip

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

_CLOSES_BLOCK: dict[str, Callable[[keras.layers.Layer], bool]] = {
    "densenet201": lambda layer: isinstance(layer, (layers.Concatenate, layers.AveragePooling2D)),
    "resnet152": lambda layer: layer.name.endswith("_out"),
    "mobilenet": lambda layer: isinstance(layer, layers.ReLU),
}


def network_spec(network: str) -> NetworkSpec:
    """The Table I row of ``network``; a ValueError lists the valid names."""
    if network not in NETWORKS:
        raise ValueError(f"Unknown network {network!r}: choose one of {sorted(NETWORKS)}.")
    return NETWORKS[network]


@keras.saving.register_keras_serializable(package="mecl_utils")
class ImageNetPreprocessing(layers.Layer):
    """``keras.applications.<module>.preprocess_input`` as a layer, so that models save without Lambda."""

    def __init__(self, network: str, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self._preprocess_input = network_spec(network).preprocess_input

    def call(self, images):
        return self._preprocess_input(images)

    def get_config(self):
        return {**super().get_config(), "network": self.network}


def build_classifier(
    network: str,
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    image_size: int | None = None,
    weights: str | os.PathLike | None = "imagenet",
    alpha: float = 1.0,
    dense_units: int = 256,
    dropout: float = 0.5,
) -> keras.Model:
    """The Sec. III transfer-learning model: resize + preprocess → ImageNet backbone → GAP → MLP head.

    Takes images of ``input_shape`` in the 0-255 range and resizes them to ``image_size`` (default: the
    network's native size; at least ``min_size``). ``weights``: "imagenet", None or a no-top .h5 file.
    The head widths (``dense_units``, ``dropout``) are ours: the paper does not give them. The Table I
    frozen-layer rule is applied to the backbone.
    """
    spec = network_spec(network)
    image_size = image_size or spec.native_size
    if image_size < spec.min_size:
        raise ValueError(
            f"{spec.constructor} needs image_size >= {spec.min_size}, got {image_size}: pass a larger "
            "image_size (the input is resized to it)."
        )
    if alpha != 1.0 and network != "mobilenet":
        raise ValueError(f"alpha is MobileNet's width multiplier; leave it at 1.0 for {network!r}.")
    if weights not in ("imagenet", None) and not Path(weights).is_file():
        raise FileNotFoundError(
            f"No weights file at {weights}: pass weights='imagenet' (Keras download), None, or an existing "
            "no-top .h5 file."
        )
    images = keras.Input(input_shape, name="images")
    x = layers.Resizing(image_size, image_size, name="resize")(images)
    x = ImageNetPreprocessing(network, name="preprocess")(x)
    # input_tensor= keeps the backbone's layers flat in the classifier's graph, so every intermediate layer
    # is reachable as classifier.get_layer(name).output. A nested sub-model would need its inner graph
    # re-wired to the outer input before any intermediate layer could be tapped.
    options = {"alpha": alpha} if network == "mobilenet" else {}
    backbone = spec.application(
        include_top=False,
        weights=None if weights is None else str(weights),
        input_tensor=x,
        input_shape=(image_size, image_size, input_shape[-1]),
        **options,
    )
    _apply_frozen_rule(backbone, network)
    x = layers.GlobalAveragePooling2D(name="head_pool")(backbone.output)
    x = layers.Dense(dense_units, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="head_output")(x)
    return keras.Model(images, outputs, name=f"{network}_classifier")


def _apply_frozen_rule(backbone: keras.Model, network: str) -> None:
    """Table I: which backbone layers stay frozen while the classifier is trained."""
    for layer in backbone.layers:
        if network in ("densenet201", "resnet152"):
            layer.trainable = isinstance(layer, layers.BatchNormalization)
        elif network == "efficientnetb7":  # frozen: stem and block1a_ ... block5x_
            layer.trainable = layer.name.startswith(("block6", "block7", "top_"))


def backbone_model(classifier: keras.Model) -> keras.Model:
    """The classifier up to its backbone's output (the input of the ``head_pool`` layer)."""
    return keras.Model(classifier.inputs, _get_layer(classifier, "head_pool").input, name="backbone")


def resolve_placement(model: keras.Model, network: str, layer_number: int) -> str:
    """The block output where a branch placed "after layer ``layer_number``" attaches (module docstring)."""
    if network == "inceptionv3":
        candidates = [layer.name for layer in model.layers if re.fullmatch(r"mixed\d+", layer.name)]
    elif network in _CLOSES_BLOCK:
        candidates = [
            layer
            for layer in model.layers
            if hasattr(layer, "kernel") and not (network == "resnet152" and layer.name.endswith("_0_conv"))
        ]
    else:
        valid = [*sorted(_CLOSES_BLOCK), "inceptionv3"]
        raise ValueError(f"Table II places branches on {valid} only, not on {network!r}.")
    if not 1 <= layer_number <= len(candidates):
        raise ValueError(f"layer_number must be in 1..{len(candidates)} for {network!r}, got {layer_number}.")
    if network == "inceptionv3":
        return candidates[layer_number - 1]
    start = model.layers.index(candidates[layer_number - 1])
    return next(layer.name for layer in model.layers[start:] if _CLOSES_BLOCK[network](layer))


def _get_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    names = [layer.name for layer in model.layers]
    if name not in names:
        near = difflib.get_close_matches(name, names, n=8, cutoff=0.6) or names[:8]
        raise ValueError(
            f"Model {model.name!r} has no layer {name!r}. Near names: {near} ({len(names)} layers in all; "
            "see model.summary() or PLACEMENTS)."
        )
    return model.get_layer(name)


def feature_extractor(model: keras.Model, layer_names: Sequence[str]) -> keras.Model:
    """A model from ``model``'s input to a dict {layer name: activation} at ``layer_names``."""
    outputs = {name: _get_layer(model, name).output for name in layer_names}
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
        features = _get_layer(classifier, layer_name).output
        shape = tuple(features.shape[1:])
        if shape != tuple(branch.input_shape[1:]):
            raise ValueError(
                f"Branch {branch.name!r} expects features {branch.input_shape[1:]} but {layer_name!r} "
                f"outputs {shape}: build it with build_branch(feature_shape={shape}, ...)."
            )
        exits.append(branch(features))
    return keras.Model(classifier.inputs, [*exits, classifier.output], name=f"{classifier.name}_multi_exit")


def mobilenet_weights_path(search_dir: str | os.PathLike | None = None, *, alpha: float = 0.25) -> str:
    """The offline ImageNet no-top MobileNet weights for ``alpha``, else "imagenet" (Keras downloads them).

    Searched in order: ``search_dir`` (a FileNotFoundError if given and the file is missing there),
    ``$MECL_WEIGHTS_DIR``, ``$KERAS_HOME/models`` (default ``~/.keras/models``) and ``../shared/data``
    next to the repository.
    """
    alpha_texts = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
    if alpha not in alpha_texts:
        raise ValueError(f"ImageNet MobileNet weights exist for alpha in {sorted(alpha_texts)}, not {alpha}.")
    alpha_text = alpha_texts[alpha]
    filename = f"mobilenet_{alpha_text}_224_tf_no_top.h5"  # Keras' own cache name
    if search_dir is not None:
        path = Path(search_dir) / filename
        if not path.is_file():
            raise FileNotFoundError(f"No {filename} in {search_dir}: put it there or pass search_dir=None.")
        return str(path)
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    directories = [os.environ.get("MECL_WEIGHTS_DIR"), keras_home / "models", SHARED_DATA_DIR]
    for directory in filter(None, directories):
        if (Path(directory) / filename).is_file():
            return str(Path(directory) / filename)
    return "imagenet"
