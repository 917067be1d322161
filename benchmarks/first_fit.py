"""The first ``fit`` of a network, with and without ``backbones.build_for_fit``: what tracing twice costs.

Keras (TensorFlow backend, no distribution strategy) creates the optimizer's slots and the compiled metrics'
state while tracing the first training step, and a ``tf.function`` that creates variables is traced a second
time. On a CPU, tracing a large network's training step takes far longer than a few steps of training, so the
first ``fit`` of the miniature paper grid's networks (tests/test_paper_miniature.py) or of a worker's first
whole-network run is mostly tracing. Each measurement runs in a fresh one-thread process (an engine worker's
setting): build the classifier, compile it as ``trained_networks.train_classifier`` does, optionally build it
for fit, then fit one epoch of ``--images`` random images with validation; sides alternate, and the weights of
both sides are compared.

    .venv/bin/python benchmarks/first_fit.py [--networks tiny_cnn mobilenet densenet201] [--repeats 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def first_fit(network: str, built: bool, images: int) -> tuple[float, float]:
    import time

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    from mecl_utils.networks.backbones import build_classifier, build_for_fit, build_tiny_cnn
    from mecl_utils.training.execution import STEPS_PER_EXECUTION

    keras.utils.set_random_seed(0)
    if network == "tiny_cnn":
        model, shape = build_tiny_cnn(10), (8, 8, 1)
    else:
        size = 75 if network == "inceptionv3" else 32
        model, shape = build_classifier(network, 10, image_size=size, weights=None), (32, 32, 3)
    model.compile(
        keras.optimizers.Adam(1e-4),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (images, *shape), dtype=np.uint8), np.arange(images) % 10
    start = time.perf_counter()
    if built:
        build_for_fit(model, (x, y))
    model.fit(x, y, batch_size=8, epochs=1, validation_data=(x[:8], y[:8]), verbose=0)
    seconds = time.perf_counter() - start
    checksum = float(sum(np.abs(keras.ops.convert_to_numpy(w)).sum() for w in model.weights))
    return seconds, checksum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["tiny_cnn", "mobilenet", "densenet201"])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # network, built: one child process
    args = parser.parse_args()
    if args.measure:
        seconds, checksum = first_fit(args.measure[0], args.measure[1] == "built", args.images)
        print(seconds, checksum)
        return
    for network in args.networks:
        times: dict[str, list[float]] = {"unbuilt": [], "built": []}
        checksums = set()
        for repeat in range(args.repeats):
            for side in ("unbuilt", "built") if repeat % 2 == 0 else ("built", "unbuilt"):
                command = [sys.executable, __file__, "--measure", network, side, "--images", str(args.images)]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
                times[side].append(float(out[-2]))
                checksums.add(out[-1])
        unbuilt, built = min(times["unbuilt"]), min(times["built"])
        same = "identical weights" if len(checksums) == 1 else f"WEIGHTS DIFFER: {sorted(checksums)}"
        print(
            f"{network:12s} first fit: {unbuilt:6.1f} s as Keras builds it, {built:6.1f} s built for fit "
            f"({unbuilt / built:.2f}×); {same}",
            flush=True,
        )


if __name__ == "__main__":
    main()
