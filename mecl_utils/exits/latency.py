"""Real early exit on this CPU: the classifier cut at its exits and run stage by stage.

The MAC count of ``costs`` predicts what early exit saves (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. I: exits
for inference under deadlines). This module measures it: the classifier becomes one Keras sub-model per
stage between exits, each exit gets a Fig. 7 branch, and images go through stage by stage, each stopping at
the exit a policy chose for it. Timed against the plain classifier, one image at a time or in batches.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from mecl_utils.networks.branches import build_branch

__all__ = ["run_stages", "staged_latency"]


def _stages(classifier: keras.Model, layers: tuple[str, ...], num_classes: int) -> tuple[list, list]:
    """The classifier cut at the exit layers (one sub-model per stage) and a Fig. 7 branch per exit."""
    cuts = [
        classifier.inputs[0],
        *(classifier.get_layer(name).output for name in layers),
        classifier.outputs[0],
    ]
    segments = [keras.Model(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1)]
    heads = [build_branch(tuple(classifier.get_layer(name).output.shape[1:]), num_classes) for name in layers]
    return segments, heads


def staged_latency(
    classifier: keras.Model,
    layers: tuple[str, ...],
    images: np.ndarray,
    exit_index,
    *,
    batch_size: int = 1,
    repeats: int = 3,
) -> dict:
    """Seconds per image of the plain classifier and of real early exit (best of ``repeats``).

    The staged network runs stage by stage: backbone segment, its branch; samples whose exit this is stop,
    the rest go on. The branches get fresh weights: time does not depend on their values. ``exit_index[i]``
    is where image i leaves (from a policy on the same images).
    """
    import tensorflow as tf

    num_classes = int(classifier.outputs[0].shape[-1])
    segments, heads = _stages(classifier, layers, num_classes)

    def compiled(model):
        return tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    full = compiled(classifier)
    run_segments, run_heads = [compiled(m) for m in segments], [compiled(m) for m in heads]
    exit_index = np.asarray(exit_index)
    batches = [slice(i, i + batch_size) for i in range(0, len(images), batch_size)]

    def plain():
        for part in batches:
            full(images[part]).numpy()

    def staged():
        run_stages(run_segments, run_heads, images, exit_index, batch_size)

    timings = {}
    for name, work in (("plain", plain), ("staged", staged)):
        work()  # trace every shape once
        best = min(_seconds(work) for _ in range(repeats))
        timings[name] = best / len(images)
    return timings


def run_stages(segments, heads, images: np.ndarray, exit_index, batch_size: int) -> np.ndarray:
    """Run ``images`` stage by stage in batches, each image stopping at its exit ``exit_index[i]``.

    Stage s is backbone segment s and, before the final exit, branch s: only the images that have not left
    yet go through it. Returns how many images each stage ran.
    """
    import tensorflow as tf

    exit_index = np.asarray(exit_index)
    ran = np.zeros(len(segments), dtype=int)
    for start in range(0, len(images), batch_size):
        x, leave = images[start : start + batch_size], exit_index[start : start + batch_size]
        for stage, segment in enumerate(segments):
            ran[stage] += len(leave)
            x = segment(x)
            if stage == len(heads):  # the final exit: the classifier's own output
                x.numpy()
                break
            heads[stage](x).numpy()  # the exit decision needs the branch's output
            stay = leave > stage
            if not stay.any():
                break
            if not stay.all():
                x, leave = tf.boolean_mask(x, stay), leave[stay]
    return ran


def _seconds(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start
