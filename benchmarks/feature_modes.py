"""What each feature mode costs a branch run: float32 in memory, float16 shards on disk, the cut backbone.

One book-profile case at the first MobileNet placement (``conv_pw_3_relu``, random weights, 64-pixel
inputs, random images: the speed of a run does not depend on what the pixels show), ``--images`` training
images. The features are written once (memory: extracted; shards: extracted and written as float16
``.npy`` shards, timed); then one vanilla branch run of ``--epochs`` epochs per mode, the modes alternating
for ``--rounds`` rounds, in one process and one thread of TensorFlow's per run as a Ray task has. Printed:
seconds per run (each round), the train split's bytes in RAM or on disk, and the ratio to memory mode.

    .venv/bin/python benchmarks/feature_modes.py [--images 4096] [--epochs 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from mecl_utils.curriculum.sampler import sampler_for_method
from mecl_utils.networks.backbones import build_classifier
from mecl_utils.networks.data import Dataset, Split, Splits
from mecl_utils.protocol import feature_modes, feature_shards
from mecl_utils.protocol.features import extract_features
from mecl_utils.training.classifier_wise import BranchRun, train_branch

LAYER = "conv_pw_3_relu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    rng = np.random.default_rng(0)
    n, n_eval = args.images, 512
    x = rng.integers(0, 256, (n + n_eval, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, n + n_eval)
    index = np.arange(n + n_eval)
    train = Split(x[:n], y[:n], index[:n])
    held_out = Split(x[n:], y[n:], index[n:])
    splits = Splits(train, held_out, held_out, held_out)
    dataset = Dataset("random", x, y, x[n:], y[n:], tuple(map(str, range(10))), "random pixels")
    classifier = build_classifier("mobilenet", 10, image_size=64, weights=None, alpha=0.25)

    start = time.perf_counter()
    memory = {
        name: extract_features(classifier, [LAYER], getattr(splits, name).x)[LAYER]
        for name in ("train", "val")
    }
    print(
        f"extract to memory: {time.perf_counter() - start:.1f} s, "
        f"train {memory['train'].nbytes / 2**20:.0f} MiB in RAM"
    )
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MECL_CACHE_DIR"] = folder
        start = time.perf_counter()
        shards = feature_shards.cached_feature_shards(
            classifier, "bench", "mobilenet", dataset, splits, [LAYER]
        )
        shards = {name: by_layer[LAYER] for name, by_layer in shards.items()}
        print(
            f"extract to shards: {time.perf_counter() - start:.1f} s, "
            f"train {shards['train'].nbytes / 2**20:.0f} MiB on disk"
        )
        cut = feature_modes.cut_backbone(classifier, LAYER)
        inputs = {
            "memory": (memory["train"], memory["val"], None),
            "shards": (shards["train"], shards["val"], None),
            "backbone": (train.x, held_out.x, cut),
        }
        run = BranchRun(
            "adam", 1e-3, args.epochs, plateau_patience=2, plateau_factor=0.5, init_seed=1, dropout_seed=2
        )
        sampler = sampler_for_method("vanilla", np.zeros(n), 64, None, seed=3)
        seconds = {mode: [] for mode in inputs}
        for round_number in range(args.rounds):
            order = list(inputs) if round_number % 2 == 0 else list(reversed(inputs))
            for mode in order:
                x_train, x_val, backbone = inputs[mode]
                start = time.perf_counter()
                train_branch(
                    run, sampler, (x_train, y[:n]), (x_val, y[n:]), (x_val, y[n:]),
                    num_classes=10, frozen_backbone=backbone,
                )  # fmt: skip
                seconds[mode].append(time.perf_counter() - start)
                print(f"round {round_number + 1}, {mode}: {seconds[mode][-1]:.1f} s")
    base = statistics.median(seconds["memory"])
    for mode, values in seconds.items():
        median = statistics.median(values)
        print(f"{mode:>8}: median {median:.1f} s per run ({median / base:.2f}× memory), runs {values}")


if __name__ == "__main__":
    main()
