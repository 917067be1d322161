"""How a network's fine-tune runs: how many training steps one call of Keras' compiled function takes,
and whether a fine-tune is short enough to run eagerly instead (``trained_networks.train_classifier``'s
recipe and the whole-network runs; Sec. III of the paper fixes neither: both are speed decisions).

Both decisions can move a network's weights in their last digits, so where they differ from the profiles'
usual choice the network's cache key records them (``trained_networks.classifier_parts``).
"""

from __future__ import annotations

import math

__all__ = ["EAGER_STEPS", "STEPS_PER_EXECUTION", "runs_eagerly", "steps_per_execution"]

# Steps per call of the compiled train function (benchmarks/README.md). Safe with fit(x, y): Keras starts a
# fresh iterator every epoch, so the last call of an epoch stops where the data ends.
STEPS_PER_EXECUTION = 16


def steps_per_execution(examples: int, batch_size: int) -> int:
    """``STEPS_PER_EXECUTION``, or an epoch's steps where an epoch has fewer: Keras wraps a multi-step call in
    a graph loop that costs tracing time and saves nothing when the epoch is one call anyway (1.3x on the
    first fit of DenseNet201 and EfficientNetB7, ``benchmarks/short_fit.py``). Without the loop the graph is
    optimised differently: DenseNet201's weights stay the same to the last bit, EfficientNetB7's differ in
    the last digits, so such a network's cache key records the count. The smoke, book and paper profiles'
    networks have longer epochs and keep the loop and their keys."""
    return max(1, min(STEPS_PER_EXECUTION, math.ceil(examples / batch_size)))


# A whole fine-tune of at most this many steps runs eagerly (benchmarks/eager_fit.py).
EAGER_STEPS = 8


def runs_eagerly(examples: int, batch_size: int, epochs: int) -> bool:
    """Whether a fine-tune is short enough (``EAGER_STEPS`` steps in all) to run eagerly: tracing a large
    network's training graph costs more than a few steps gain (DenseNet201 at 75 px: 50 s traced, 4 s eager).
    Eager steps skip the graph's fused kernels, so the key records it; the profiles' fine-tunes (hundreds of
    steps or more) stay traced, their keys unchanged."""
    return epochs * math.ceil(examples / batch_size) <= EAGER_STEPS
