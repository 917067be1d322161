"""Compute cost of each exit of a multi-exit network: multiply-accumulates (MACs) and parameters.

An early exit saves compute only if the network stops there, so the cost of an exit is the cost of the part
of the backbone its input needs plus the exit's own branch (``exit_costs``). The part that is needed is found
by walking the functional graph backwards from the exit layer's output: a parallel path the exit reads (a
ResNet shortcut, an Inception tower) is counted, a layer after the exit is not. Keras has no counter of its
own, so this one counts from the layers themselves and the shapes of each call (``layer_macs``,
``model_costs``, ``total_macs``), into nested models (a branch inside a multi-exit model) too.

Convention. One MAC is one multiply-add of an input with a weight, counted for the weight layers only:
Conv1D/2D/3D (with groups: each output reads ``in_channels / groups`` channels), DepthwiseConv1D/2D,
SeparableConv1D/2D (depthwise then pointwise) and Dense (on inputs of any rank, once per position). Strides,
dilation and padding enter through the output shape: MACs = output positions × kernel size. Biases are
additions, not MACs, and are not counted. Left out (0 MACs, but listed with their parameters): batch
normalization, taken as folded into the preceding convolution at inference, and the other normalization layers
(elementwise, like activations); pooling, activations, Add, Multiply (squeeze-and-excitation scaling),
Concatenate, resizing, rescaling and preprocessing. A weight layer of another kind (LSTM, EinsumDense,
Conv2DTranspose, ...) raises a ValueError rather than being counted wrong. Parameters are every weight,
trainable or not, so that a whole model's count equals ``model.count_params()``.

Validation (tests/test_costs.py, the ImageNet configurations with their classifier): MobileNet 1.0-224 and
0.25-224 count 568.7 M and 41.0 M against 569 M and 41 M mult-adds (Howard et al. 2017, Table 6); ResNet-152
11.28 G against 11.3 G (He et al. 2016, Table 1, whose "FLOPs" are multiply-adds). The other three papers give
no figure that pins a count to 2 %, so those networks are checked against torchvision's documented GFLOPS for
the same architectures (one multiply-add per FLOP): DenseNet-201 4.29 G (Huang et al. 2017 plot FLOPs in Fig.
3 only, with no number to read); InceptionV3 at 299, 5.71 G (Szegedy et al. 2016 give only a rounded "5
billion multiply-adds" in the abstract, 12 % lower); EfficientNet-B7 at 600, 37.75 G (Tan & Le 2019, Table 2,
print 37 B, 2.0 % lower; their B4 and B5 are 4-5 % below this count as well, and other counters find the same,
so the gap is in the table, not in the architecture or the counter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import pandas as pd
from keras import layers

from mecl_utils.networks.backbones import get_layer
from mecl_utils.networks.branches import branch_layer, build_branch

__all__ = [
    "Cost",
    "ExitCost",
    "LayerCost",
    "costs_frame",
    "exit_costs",
    "layer_macs",
    "model_costs",
    "total_macs",
]

# MACs = output positions × kernel size (a depthwise kernel has depth_multiplier as its output axis).
_KERNEL_PER_OUTPUT = (
    layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.DepthwiseConv1D, layers.DepthwiseConv2D, layers.Dense,
)  # fmt: skip
_SEPARABLE = (layers.SeparableConv1D, layers.SeparableConv2D)
_NORMALIZATION = (
    layers.BatchNormalization,
    layers.LayerNormalization,
    layers.GroupNormalization,
    layers.Normalization,
)


@dataclass(frozen=True)
class Cost:
    """MACs and parameters of some part of a network."""

    macs: int
    params: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.macs + other.macs, self.params + other.params)


@dataclass(frozen=True)
class LayerCost:
    """One layer of ``model_costs``: nested models' layers are named ``outer/inner``."""

    name: str
    kind: str
    macs: int
    params: int


@dataclass(frozen=True)
class ExitCost:
    """An exit at ``layer``: the backbone part its input needs, plus its branch."""

    layer: str
    backbone: Cost
    branch: Cost

    @property
    def total(self) -> Cost:
        return self.backbone + self.branch


def _positions(shape: tuple, layer: keras.layers.Layer) -> int:
    """Spatial positions (all axes but batch and channels) of one sample of a tensor of ``shape``."""
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    dims = shape[2:] if channels_first else shape[1:-1]
    if None in dims:
        raise ValueError(
            f"Layer {layer.name!r} has unknown sizes {shape}: build the model on a fixed input shape."
        )
    return math.prod(dims)


def _call_macs(layer: keras.layers.Layer, input_shape: tuple, output_shape: tuple) -> int:
    """MACs of one call of a (non-model) ``layer`` with these input and output shapes."""
    if isinstance(layer, _SEPARABLE):
        kernel_size = math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
        return _positions(output_shape, layer) * kernel_size
    if isinstance(layer, _KERNEL_PER_OUTPUT):
        return _positions(output_shape, layer) * math.prod(layer.kernel.shape)
    if not layer.weights or isinstance(layer, _NORMALIZATION):
        return 0
    raise ValueError(
        f"Cannot count the MACs of layer {layer.name!r} ({type(layer).__name__}): networks.costs counts "
        "convolutions and Dense layers, and only weightless or normalization layers as 0 MACs."
    )


def layer_macs(layer: keras.layers.Layer) -> int:
    """MACs of ``layer``'s first call in a functional graph (a nested model: all of its graph)."""
    if isinstance(layer, keras.Model):
        return total_macs(layer)
    return _call_macs(layer, tuple(layer.input.shape), tuple(layer.output.shape))


def _graph_nodes(outputs: list) -> list:
    """The graph nodes that computing ``outputs`` needs, each once, inputs before the nodes that read them."""
    ordered, seen = [], set()
    # An explicit stack, not recursion: graph depth (about 800 layers in EfficientNetB7) nears Python's limit.
    stack = [(_producer(tensor), False) for tensor in reversed(outputs)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            ordered.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((_producer(tensor), False) for tensor in reversed(node.input_tensors))
    return ordered


def _producer(tensor):
    """The graph node (one call of a layer) whose output ``tensor`` is."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def _node_costs(node, prefix: str = "") -> list[LayerCost]:
    """Rows of one call: one row for a plain layer, the nested graph's rows for a nested model."""
    layer = node.operation
    name = f"{prefix}{layer.name}"
    if isinstance(layer, keras.Model):
        built = [tuple(tensor.shape[1:]) for tensor in layer.inputs]
        called = [tuple(tensor.shape[1:]) for tensor in node.input_tensors]
        if built != called:
            raise ValueError(f"Nested model {name!r} is called on shapes {called}, built for {built}.")
        return _graph_costs(layer.outputs, prefix=f"{name}/")
    macs = _call_macs(layer, tuple(node.input_tensors[0].shape), tuple(node.outputs[0].shape))
    return [LayerCost(name, type(layer).__name__, macs, layer.count_params())]


def _graph_costs(outputs: list, prefix: str = "") -> list[LayerCost]:
    """One row per layer that ``outputs`` need (a shared layer: MACs of every call, parameters once)."""
    rows: dict[str, LayerCost] = {}
    for node in _graph_nodes(outputs):
        if node.is_input:
            continue
        for row in _node_costs(node, prefix):
            if row.name in rows:
                row = LayerCost(row.name, row.kind, rows[row.name].macs + row.macs, rows[row.name].params)
            rows[row.name] = row
    return list(rows.values())


def _sum(rows: list[LayerCost]) -> Cost:
    return Cost(sum(row.macs for row in rows), sum(row.params for row in rows))


def model_costs(model: keras.Model) -> list[LayerCost]:
    """One row per layer of ``model`` (nested models flattened), in graph order: inputs first."""
    return _graph_costs(model.outputs)


def total_macs(model: keras.Model) -> int:
    return _sum(model_costs(model)).macs


def costs_frame(rows: list[LayerCost]) -> pd.DataFrame:
    """``rows`` as a table with columns name, kind, macs, params."""
    return pd.DataFrame([vars(row) for row in rows], columns=["name", "kind", "macs", "params"])


def exit_costs(
    model: keras.Model,
    exit_at: str | tuple[str, str, int] | None,
    *,
    branch: keras.Model | None = None,
    num_classes: int | None = None,
) -> ExitCost:
    """Cost of the exit that reads layer ``exit_at`` of ``model``, or of the full network if it is None.

    ``exit_at`` is a layer name or (network, data set name, branch number) as in ``branches.branch_layer``.
    ``branch`` defaults to the Fig. 7 branch (``branches.build_branch``) on that layer's output, with
    ``num_classes`` classes (default: as many as ``model``'s output). The full network has no branch.
    """
    if exit_at is None:
        return ExitCost(model.name, _sum(model_costs(model)), Cost(0, 0))
    name = branch_layer(*exit_at) if isinstance(exit_at, tuple) else exit_at
    features = get_layer(model, name).output
    if branch is None:
        classes = num_classes or model.outputs[-1].shape[-1]
        branch = build_branch(tuple(features.shape[1:]), classes)
    elif tuple(branch.inputs[0].shape[1:]) != tuple(features.shape[1:]):
        raise ValueError(
            f"Branch {branch.name!r} expects features {tuple(branch.inputs[0].shape[1:])} but {name!r} "
            f"outputs {tuple(features.shape[1:])}."
        )
    return ExitCost(name, _sum(_graph_costs([features])), _sum(model_costs(branch)))
