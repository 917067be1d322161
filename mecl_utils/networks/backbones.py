"""Network architectures: the Table I classifiers, built from ``keras.applications``, plus a tiny CNN.

Implements, for Bakhtiarnia, Zhang & Iosifidis (2021):

- Sec. III, the transfer-learning recipe for teachers and backbones: an ImageNet model without its top,
  global average pooling, two dense layers with Dropout in between (``build_classifier``);
- Table I, batch size, frozen layers and reported test accuracy of each network (``NETWORKS``).

``build_tiny_cnn`` is not in the paper: it is the seconds-scale stand-in backbone of the ``smoke`` profile,
with two named block outputs for its two branches. Branches themselves live in ``branches``.

Input sizes: Keras' minimum is 32×32 for every network here except InceptionV3 (75×75); the native ImageNet
sizes are 224 (DenseNet201, MobileNet, ResNet152), 299 (InceptionV3) and 600 (EfficientNetB7).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

__all__ = [
    "NETWORKS",
    "PREDICT_BATCH_SIZE",
    "ImageNetPreprocessing",
    "NetworkSpec",
    "accuracy",
    "backbone_model",
    "build_classifier",
    "build_for_fit",
    "build_tiny_cnn",
    "copy_variables",
    "get_layer",
    "logits",
    "mobilenet_weights_path",
    "network_spec",
    "reset_optimizer",
    "top1_accuracy",
]

# The repository's sibling ``../shared/data`` holds the offline MobileNet weights on the project's machines.
PREDICT_BATCH_SIZE = 256
SHARED_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


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


def build_tiny_cnn(
    num_classes: int, *, input_shape: tuple[int, int, int] = (8, 8, 1), width: int = 16, dropout: float = 0.25
) -> keras.Model:
    """A two-block CNN trained from scratch: the ``smoke`` profile's backbone (and, wider, its teacher).

    Blocks end in layers named ``block1_out`` and ``block2_out``, where the smoke branches attach. The head is
    the paper's (global pooling, two dense layers with Dropout in between), so the code path is the same.
    """
    images = keras.Input(input_shape, name="images")
    x = layers.Rescaling(1 / 255, name="rescale")(images)
    for block, filters in enumerate((width, 2 * width), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv")(x)
        # momentum 0.9: the smoke run has only ~36 steps an epoch for the moving averages to settle
        x = layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"block{block}_out")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dense(4 * width, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="head_output")(x)
    return keras.Model(images, outputs, name="tiny_cnn_classifier")


def accuracy(model: keras.Model, x, y, *, batch_size: int = 256) -> float:
    """Top-1 accuracy of a softmax classifier on inputs ``x`` with integer labels ``y``, in inference mode."""
    return top1_accuracy(model.predict(x, batch_size=batch_size, verbose=0), y)


def top1_accuracy(probabilities, y) -> float:
    """The fraction of rows of ``probabilities`` whose largest entry is at the integer label ``y``."""
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(y)))


def copy_variables(target: keras.Model, source: keras.Model) -> None:
    """``source``'s state into ``target`` of the same architecture: weights, BatchNormalization statistics
    and dropout seed states (all in ``.variables``)."""
    for variable, value in zip(target.variables, source.variables, strict=True):
        variable.assign(value)


def build_for_fit(model: keras.Model, batch) -> None:
    """Create, before ``model.fit``, the state Keras would create while tracing the first training step.

    ``batch`` is (inputs, targets) with the shapes and dtypes of the data ``fit`` gets (arrays, or a
    ``tf.data`` pipeline's ``element_spec``); only those are read. Without a distribution strategy Keras
    creates the optimizer's slots and the compiled metrics' and loss's state inside the traced train
    function, and a ``tf.function`` that creates variables is traced twice: once to create them, once
    more without. Built beforehand, the step is traced once, with the same weights to the last bit
    (MobileNet: first ``fit`` 10.2 → 4.8 s; benchmarks/README.md). This is what Keras itself does under a
    distribution strategy (``Trainer._symbolic_build``, called here). Parts already built are left as
    they are, so a compiled model reused across runs is built once.
    """

    def symbolic(leaf) -> keras.KerasTensor:
        return keras.KerasTensor((None, *tuple(leaf.shape)[1:]), keras.backend.standardize_dtype(leaf.dtype))

    x, y = batch
    model._symbolic_build(
        data_batch=(keras.tree.map_structure(symbolic, x), keras.tree.map_structure(symbolic, y), None)
    )


def reset_optimizer(optimizer: keras.optimizers.Optimizer, learning_rate: float) -> None:
    """A compiled model's optimizer back to a new one's state, at ``learning_rate``."""
    for variable in optimizer.variables:
        variable.assign(keras.ops.zeros_like(variable))
    optimizer.learning_rate = learning_rate


def backbone_model(classifier: keras.Model) -> keras.Model:
    """The classifier up to its backbone's output (the input of the ``head_pool`` layer)."""
    return keras.Model(classifier.inputs, get_layer(classifier, "head_pool").input, name="backbone")


def get_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    names = [layer.name for layer in model.layers]
    if name not in names:
        near = difflib.get_close_matches(name, names, n=8, cutoff=0.6) or names[:8]
        raise ValueError(
            f"Model {model.name!r} has no layer {name!r}. Near names: {near} ({len(names)} layers in all; "
            "see model.summary() or PLACEMENTS)."
        )
    return model.get_layer(name)


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


def logits(model: keras.Model, x, *, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
    """The pre-softmax outputs of a classifier (its ``head_output`` dense layer) in float64.

    The last dense layer is applied in float64 to the float32 activations it reads, so no probability is
    rounded to 1 on the way.
    """
    head = model.get_layer("head_output")
    hidden = keras.Model(model.inputs, head.input).predict(x, batch_size=batch_size, verbose=0)
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in head.get_weights())
    return hidden.astype(np.float64) @ kernel + bias
