"""Whole-network training with and without XLA (``jit_compile=True``) on this CPU.

The network of the strategies chapter's runs: MobileNet α=0.25 (ImageNet weights) at 64 px with the Sec. III
head, compiled as ``trained_networks.train_classifier`` compiles it, built for fit, one thread (an engine
worker's setting). Two epochs of ``--images`` random CIFAR-sized images, batch 32: the first includes
tracing (and, with XLA, compiling), the second is the steady rate. Each side runs in a fresh process; sides
alternate.

    .venv/bin/python benchmarks/network_xla.py [--images 2048] [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def two_epochs(jit_compile: bool, images: int) -> tuple[float, float]:
    import time

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    import numpy as np

    from mecl_utils.networks.backbones import build_classifier, build_for_fit, mobilenet_weights_path
    from mecl_utils.protocol.trained_networks import STEPS_PER_EXECUTION

    keras.utils.set_random_seed(0)
    weights = mobilenet_weights_path(alpha=0.25)
    model = build_classifier("mobilenet", 10, image_size=64, weights=weights, alpha=0.25)
    model.compile(
        keras.optimizers.Adam(1e-4),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
        jit_compile=jit_compile,
    )
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8), np.arange(images) % 10
    build_for_fit(model, (x, y))
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--measure", choices=["plain", "xla"], help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.measure:
        print(*two_epochs(args.measure == "xla", args.images))
        return
    for repeat in range(args.repeats):
        for side in ("plain", "xla") if repeat % 2 == 0 else ("xla", "plain"):
            command = [sys.executable, __file__, "--measure", side, "--images", str(args.images)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
            first, second = float(out[-2]), float(out[-1])
            print(
                f"{side:5s} first epoch (traces) {first:5.1f} s, second {second:5.1f} s: "
                f"{args.images / second:,.0f} img/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
