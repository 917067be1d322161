"""Teacher scoring and feature extraction throughput: the two one-off passes over the data before the grid.

Scoring (Sec. II-B): a teacher predicts every training image and its per-sample cross-entropy becomes the
difficulty score. Feature extraction (Sec. II-A, classifier-wise training): the frozen backbone's activations
at both branch layers, computed in one pass and cached. Both are measured on random 32×32 RGB images with
the book profile's networks (MobileNetV1 α = 0.25 at 64×64 with ImageNet weights, and the independent tiny
CNN teacher), at the batch sizes the library uses; images/s of the second of two passes (the first traces).

    .venv/bin/python benchmarks/scoring.py [--images 8192]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mecl_utils.curriculum.sorting import cross_entropy
from mecl_utils.networks.backbones import (
    PREDICT_BATCH_SIZE,
    build_classifier,
    build_tiny_cnn,
    mobilenet_weights_path,
)
from mecl_utils.networks.branches import branch_layer
from mecl_utils.protocol.features import extract_features


def images_per_second(work, n: int) -> float:
    work()  # traces the inference function
    start = time.perf_counter()
    work()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=8192)
    args = parser.parse_args()
    print(f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}, {os.cpu_count()} CPU cores")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images)
    mobilenet = build_classifier(
        "mobilenet", 10, image_size=64, weights=mobilenet_weights_path(alpha=0.25), alpha=0.25
    )
    tiny = build_tiny_cnn(10, input_shape=(32, 32, 3))

    def score(model):
        return lambda: cross_entropy(model.predict(images, batch_size=PREDICT_BATCH_SIZE, verbose=0), labels)

    layers = [branch_layer("mobilenet", "cifar10", number) for number in (1, 2)]
    rates = {
        "MobileNet teacher scoring": images_per_second(score(mobilenet), args.images),
        "tiny CNN teacher scoring": images_per_second(score(tiny), args.images),
        "feature extraction (both branch layers, one pass)": images_per_second(
            lambda: extract_features(mobilenet, layers, images), args.images
        ),
    }
    for name, rate in rates.items():
        print(f"{name}: {rate:,.0f} img/s")
    print("summary: img/s " + ", ".join(f"{name.split(' (')[0]} {rate:,.0f}" for name, rate in rates.items()))


if __name__ == "__main__":
    main()
