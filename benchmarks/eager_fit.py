"""A fine-tune of one step, traced (the compiled training graph) against eager.

``execution.runs_eagerly``: a fine-tune of at most ``EAGER_STEPS`` steps runs eagerly, because tracing
and optimising a large network's training graph costs more than the few steps it would speed up. On the
miniature paper grid (tests/test_paper_miniature.py: 20 images, one epoch) every network trains one step.
Each measurement runs in a fresh one-thread process (an engine worker's setting): build the classifier at
75 pixels, compile it as ``train_classifier`` does (Adam, ``steps_per_execution`` of one step, the
prediction log), then fit one epoch of ``--images`` random images in one batch, one side of ``SIDES``
(``--sides``): traced, eager after the symbolic build a traced fit needs, or eager with no such build.
Sides alternate; the weights are compared (eager steps skip the graph's fused kernels, so their last digits
may differ from the traced side's: such a network's cache key records it).

    .venv/bin/python benchmarks/eager_fit.py [--networks densenet201 efficientnetb7] [--repeats 2]
        [--sides traced eager-built eager]
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def one_step_fit(network: str, side: str, images: int) -> tuple[float, str]:
    import time

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    from mecl_utils.networks.backbones import build_classifier, build_for_fit
    from mecl_utils.training.prediction_log import fit_logged

    keras.utils.set_random_seed(0)
    model = build_classifier(network, 10, image_size=75, weights=None)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8), np.arange(images) % 10
    start = time.perf_counter()
    fit_logged(
        model,
        x,
        y,
        batch_size=images,
        epochs=1,
        compile_kwargs=dict(
            optimizer=keras.optimizers.Adam(1e-4),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=1,
            run_eagerly=side != "traced",
        ),
        before_fit=None if side == "eager" else lambda logged: build_for_fit(logged, (x, y)),
    )
    seconds = time.perf_counter() - start
    checksum = repr(
        float(sum(np.abs(keras.ops.convert_to_numpy(w)).astype(np.float64).sum() for w in model.weights))
    )
    return seconds, checksum


SIDES = {
    "traced": "the compiled training graph, built for fit first",
    "eager-built": "eager steps, built for fit first (symbolically, as a traced fit needs)",
    "eager": "eager steps, built by the first step (what trained_networks does)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["densenet201", "efficientnetb7"])
    parser.add_argument("--sides", nargs="+", choices=sorted(SIDES), default=["traced", "eager"])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # network, side: one child
    args = parser.parse_args()
    if args.measure:
        seconds, checksum = one_step_fit(args.measure[0], args.measure[1], args.images)
        print(seconds, checksum)
        return
    for network in args.networks:
        times: dict[str, list[float]] = {side: [] for side in args.sides}
        checksums: dict[str, set[str]] = {side: set() for side in args.sides}
        for repeat in range(args.repeats):
            for side in args.sides if repeat % 2 == 0 else args.sides[::-1]:
                command = [sys.executable, __file__, "--measure", network, side, "--images", str(args.images)]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
                times[side].append(float(out[-2]))
                checksums[side].add(out[-1])
        first = min(times[args.sides[0]])
        for side in args.sides:
            best = min(times[side])
            print(
                f"{network:14s} {side:12s} {best:6.1f} s (best of {args.repeats}; {first / best:.2f}x "
                f"{args.sides[0]}'s), weight checksum {sorted(checksums[side])}, all {times[side]}",
                flush=True,
            )


if __name__ == "__main__":
    main()
