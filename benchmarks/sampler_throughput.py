"""How much does feeding Keras through the curriculum sampler cost? (issue: PyDataset vs tf.data, measured)

Trains the same Fig. 7 branch on feature-sized random arrays three ways, one epoch each after a warm-up:
plain ``model.fit(x, y)`` (Keras' own shuffling, the floor), ``CurriculumBatches`` (a keras PyDataset),
and a ``tf.data`` pipeline over the sampler's precomputed batch indices. Also times the sampler alone.

    .venv/bin/python benchmarks/sampler_throughput.py [--samples 10000] [--batch-size 64]
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from mecl_utils.curriculum.pacing import preset
from mecl_utils.curriculum.sampler import CurriculumBatches, CurriculumSampler
from mecl_utils.curriculum.sorting import order
from mecl_utils.networks.branches import build_branch


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tf_dataset(x, y, sampler: CurriculumSampler, epoch: int) -> tf.data.Dataset:
    first = epoch * sampler.batches_per_epoch
    index = np.stack([sampler.batch(t) for t in range(first, first + sampler.batches_per_epoch)])
    x_t, y_t = tf.constant(x), tf.constant(y)
    return tf.data.Dataset.from_tensor_slices(index).map(lambda i: (tf.gather(x_t, i), tf.gather(y_t, i)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--feature-shape", type=int, nargs=3, default=(8, 8, 32))
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples, *args.feature_shape), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    sampler = CurriculumSampler(
        order("curriculum", rng.random(args.samples)), args.batch_size, preset("FEP(100)")
    )
    n = sampler.batches_per_epoch

    seconds = timed(lambda: [sampler.batch(t) for t in range(10 * n)])
    print(
        f"sampler alone: {10 * n / seconds:,.0f} batches/s ({args.samples} samples, batch {args.batch_size})"
    )
    big = CurriculumSampler(np.arange(50_000), 64, preset("FEP(100)"))
    seconds = timed(lambda: [big.batch(t) for t in range(600, 2600)])
    print(f"sampler alone, N=50,000 at λ=1: {2000 / seconds:,.0f} batches/s")

    def branch():
        keras.utils.set_random_seed(0)
        model = build_branch(tuple(args.feature_shape), 10)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        return model

    results = {}
    model = branch()
    model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
    results["plain fit (numpy arrays)"] = timed(
        lambda: model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
    )
    model, data = branch(), CurriculumBatches(x, y, sampler)
    model.fit(data, epochs=1, verbose=0)
    results["CurriculumBatches (PyDataset)"] = timed(lambda: model.fit(data, epochs=1, verbose=0))
    model = branch()
    model.fit(tf_dataset(x, y, sampler, 0), epochs=1, verbose=0)
    results["tf.data over sampler indices"] = timed(
        lambda: model.fit(tf_dataset(x, y, sampler, 1).prefetch(2), epochs=1, verbose=0)
    )
    for name, seconds in results.items():
        print(f"{name:32s} {args.samples / seconds:9,.0f} samples/s  ({seconds:.2f} s/epoch)")
    ratio = results["CurriculumBatches (PyDataset)"] / results["plain fit (numpy arrays)"]
    print(
        f"summary: PyDataset epoch takes {ratio:.2f}x plain fit; tf.data "
        f"{results['tf.data over sampler indices'] / results['plain fit (numpy arrays)']:.2f}x"
    )


if __name__ == "__main__":
    main()
