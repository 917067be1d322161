"""A fit whose epoch is one step, with ``STEPS_PER_EXECUTION`` steps per call against one.

``trained_networks.train_classifier`` compiles with ``steps_per_execution``: several steps per call of the
compiled function, up to 2x faster fine-tuning of the book backbone (benchmarks/README.md). Keras then wraps
the step in a graph loop (``while_loop`` with a ``cond``), which costs tracing and graph optimisation time
once per network. On the miniature paper grid (tests/test_paper_miniature.py: 20 images, one epoch) every
epoch is one step, so the loop saves nothing and only costs. ``execution.steps_per_execution`` asks for
no more steps per call than an epoch has. Each measurement runs in a fresh one-thread process (an engine
worker's setting): build the classifier at 75 pixels, compile it as ``train_classifier`` does with the given
steps per execution, build it for fit, then fit one epoch of ``--images`` random images in one batch; sides
alternate, and the weights of both sides are compared.

    .venv/bin/python benchmarks/short_fit.py [--networks densenet201 efficientnetb7] [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def short_fit(network: str, steps: int, images: int) -> tuple[float, str]:
    import time

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    from mecl_utils.networks.backbones import build_classifier, build_for_fit

    keras.utils.set_random_seed(0)
    model = build_classifier(network, 10, image_size=75, weights=None)
    model.compile(
        keras.optimizers.Adam(1e-4),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps,
    )
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8), np.arange(images) % 10
    start = time.perf_counter()
    build_for_fit(model, (x, y))
    model.fit(x, y, batch_size=images, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    checksum = repr(
        float(sum(np.abs(keras.ops.convert_to_numpy(w)).astype(np.float64).sum() for w in model.weights))
    )
    return seconds, checksum


def main() -> None:
    from mecl_utils.training.execution import STEPS_PER_EXECUTION, steps_per_execution

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["densenet201", "efficientnetb7"])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # network, steps: one child process
    args = parser.parse_args()
    if args.measure:
        seconds, checksum = short_fit(args.measure[0], int(args.measure[1]), args.images)
        print(seconds, checksum)
        return
    fitted = steps_per_execution(args.images, args.images)
    for network in args.networks:
        times: dict[int, list[float]] = {STEPS_PER_EXECUTION: [], fitted: []}
        checksums = set()
        for repeat in range(args.repeats):
            sides = (STEPS_PER_EXECUTION, fitted) if repeat % 2 == 0 else (fitted, STEPS_PER_EXECUTION)
            for steps in sides:
                command = [
                    sys.executable,
                    __file__,
                    "--measure",
                    network,
                    str(steps),
                    "--images",
                    str(args.images),
                ]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
                times[steps].append(float(out[-2]))
                checksums.add(out[-1])
        looped, single = min(times[STEPS_PER_EXECUTION]), min(times[fitted])
        same = "identical weights" if len(checksums) == 1 else f"WEIGHTS DIFFER: {sorted(checksums)}"
        print(
            f"{network:14s} one-step epoch: {looped:6.1f} s at {STEPS_PER_EXECUTION} steps per call, "
            f"{single:6.1f} s at {fitted} ({looped / single:.2f}x); {same} "
            f"(all: {times[STEPS_PER_EXECUTION]} vs {times[fitted]})",
            flush=True,
        )


if __name__ == "__main__":
    main()
