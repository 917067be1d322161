"""Would many branch runs in one graph train faster? R runs stacked on a run axis, against one at a time.

A stage's runs share the branch architecture, the feature shape and the batch size; only seeds, orderings and
learning rates differ. Stacked, R runs become one model whose weights carry a leading run axis: the
convolution a grouped convolution (the R runs' batches side by side on the channel axis, R filter groups), the
dense layers batched matrix products (``einsum`` over the run axis), Adam one update of R-stacked variables
with a learning rate per run. Each step then issues the same few ops whatever R is, so what Keras and
TensorFlow pay per op and per step is shared by R runs.

This script measures that ceiling before anything is built on it, on one thread (what an engine worker
gets) and on two (one process owning the machine), at both book placements, sides alternated, best of
``--repeats``:

- ``keras``: the real single-run path, ``classifier_wise.train_branch`` (``model.fit``, one call an epoch),
  images per second of its later epochs, validation on 1,000 rows included;
- ``stacked R``: a hand-written ``tf.function`` step over R runs (grouped convolution, batched dense layers,
  dropout, Adam with per-run learning rates), 200 steps in one traced loop, training images per second summed
  over the R runs (R = 1 is the same step without stacking: what leaving Keras' ``fit`` alone would give);
- ``conv only``: the convolution's forward pass and filter gradient alone, the branch's largest term, the
  ceiling for any rewrite of the step;
- the references: a 2048² fp32 matrix product in TensorFlow on the same thread count (sgemm).

GFLOP/s counts the training FLOPs of the branch as ``branch_training.py`` does.

    .venv/bin/python benchmarks/stacked_branches.py [--runs 1 2 4 8] [--repeats 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

SHAPES = {1: (8, 8, 32), 2: (4, 4, 128)}  # the book's two placements (conv_dw_4_relu, conv_dw_7_relu)
BATCH, FILTERS, UNITS, CLASSES = 64, 64, (256, 128), 10


def _configure(threads: int):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def training_flops(shape: tuple[int, int, int]) -> int:
    """One sample's training FLOPs: 3× the forward pass, less the convolution's input gradient."""
    h, w, c = shape
    conv = 2 * h * w * FILTERS * 9 * c
    flat = -(-h // 2) * -(-w // 2) * FILTERS
    dense = 2 * (flat * UNITS[0] + UNITS[0] * UNITS[1] + UNITS[1] * CLASSES)
    return 3 * (conv + dense) - conv


def sgemm(threads: int) -> float:
    tf = _configure(threads)
    a = tf.random.normal((2048, 2048))
    product = tf.function(lambda x: tf.matmul(x, x))
    product(a).numpy()
    best = min(_timed(lambda: product(a).numpy()) for _ in range(5))
    return 2 * 2048**3 / best / 1e9


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def keras_rate(threads: int, shape: tuple[int, int, int]) -> float:
    _configure(threads)
    import numpy as np

    from mecl_utils.curriculum.sampler import CurriculumSampler
    from mecl_utils.training.classifier_wise import BranchRun, train_branch

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8192, *shape)).astype(np.float32)
    y = rng.integers(0, CLASSES, len(x))
    run = BranchRun(
        "adam", 1e-3, epochs=3, plateau_patience=5, plateau_factor=0.5, init_seed=0, dropout_seed=1
    )
    sampler = CurriculumSampler(np.arange(len(x)), BATCH, seed=0)
    result = train_branch(run, sampler, (x, y), (x[:1000], y[:1000]), (x[:256], y[:256]), num_classes=CLASSES)
    return len(x) / min(result.epoch_seconds[1:])  # the first epoch traces the step


def stacked_rate(threads: int, shape: tuple[int, int, int], runs: int, conv_only: bool = False) -> float:
    tf = _configure(threads)
    import numpy as np

    h, w, c = shape
    rng = np.random.default_rng(0)
    features = tf.constant(rng.standard_normal((4096, h, w, c)).astype(np.float32))
    labels = tf.constant(rng.integers(0, CLASSES, len(features)))
    flat = -(-h // 2) * -(-w // 2) * FILTERS
    sizes = [(3, 3, c, FILTERS), (FILTERS,), (flat, UNITS[0]), (UNITS[0],), (UNITS[0], UNITS[1]), (UNITS[1],)]
    sizes += [(UNITS[1], CLASSES), (CLASSES,)]
    weights = [tf.Variable(tf.random.normal((runs, *size), stddev=0.05)) for size in sizes]
    if conv_only:
        weights = weights[:2]
    moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in weights]
    learning_rates = tf.constant(np.full(runs, 1e-3, np.float32))

    def grouped_conv(x, kernel):  # x: (R, B, H, W, C), kernel: (R, 3, 3, C, F)
        x = tf.reshape(tf.transpose(x, [1, 2, 3, 0, 4]), (BATCH, h, w, runs * c))
        kernel = tf.reshape(tf.transpose(kernel, [1, 2, 3, 0, 4]), (3, 3, c, runs * FILTERS))
        y = tf.reshape(tf.nn.conv2d(x, kernel, 1, "SAME"), (BATCH, h, w, runs, FILTERS))
        return tf.transpose(y, [3, 0, 1, 2, 4])

    def forward(x):
        y = tf.nn.relu(grouped_conv(x, weights[0]) + weights[1][:, None, None, None])
        if conv_only:
            return tf.reduce_sum(y)
        y = tf.nn.max_pool2d(tf.reshape(y, (runs * BATCH, h, w, FILTERS)), 2, 2, "SAME")
        y = tf.reshape(y, (runs, BATCH, flat))
        for index in (2, 4):
            y = tf.nn.relu(tf.einsum("rbi,rio->rbo", y, weights[index]) + weights[index + 1][:, None])
            y = tf.nn.dropout(y, 0.5)
        return tf.einsum("rbi,rio->rbo", y, weights[6]) + weights[7][:, None]

    @tf.function
    def steps(indices):
        for i in tf.range(tf.shape(indices)[0]):
            batch, target = tf.gather(features, indices[i]), tf.gather(labels, indices[i])
            with tf.GradientTape() as tape:
                out = forward(batch)
                loss = out if conv_only else tf.reduce_sum(
                    tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(target, out), axis=1)
                )  # fmt: skip
            for variable, gradient, (m, v) in zip(
                weights, tape.gradient(loss, weights), moments, strict=True
            ):
                m.assign(0.9 * m + 0.1 * gradient)
                v.assign(0.999 * v + 0.001 * tf.square(gradient))
                rate = tf.reshape(learning_rates, [runs] + [1] * (len(variable.shape) - 1))
                variable.assign_sub(rate * m / (tf.sqrt(v) + 1e-7))

    count = 200
    indices = tf.constant(rng.integers(0, len(features), (count, runs, BATCH)))
    steps(indices[:2])
    return count * runs * BATCH / _timed(lambda: steps(indices))


def measure(side: str, threads: int, placement: int) -> float:
    """One measurement in a fresh process, so that thread settings and traced graphs never leak."""
    command = [sys.executable, __file__, "--measure", side, str(threads), str(placement)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _measure_here(side: str, threads: int, placement: int) -> float:
    shape = SHAPES[placement]
    if side == "sgemm":
        return sgemm(threads)
    if side == "keras":
        return keras_rate(threads, shape)
    if side == "conv only":
        return stacked_rate(threads, shape, 1, conv_only=True)
    return stacked_rate(threads, shape, int(side.split()[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)  # side, threads, placement: one child
    args = parser.parse_args()
    if args.measure:
        side, threads, placement = args.measure
        print(_measure_here(side, int(threads), int(placement)))
        return
    sides = ["keras", *(f"stacked {r}" for r in args.runs), "conv only"]
    for threads in args.threads:
        reference = max(measure("sgemm", threads, 1) for _ in range(args.repeats))
        print(f"{threads} thread(s): TensorFlow sgemm 2048² {reference:.0f} GFLOP/s", flush=True)
        for placement, shape in SHAPES.items():
            best = dict.fromkeys(sides, 0.0)
            for repeat in range(args.repeats):
                for side in sides if repeat % 2 == 0 else reversed(sides):
                    best[side] = max(best[side], measure(side, threads, placement))
            flops = training_flops(shape)
            conv_flops = 2 * 2 * shape[0] * shape[1] * FILTERS * 9 * shape[2]  # forward + filter gradient
            print(f"  branch {placement}, features {shape}, {flops / 1e6:.2f} MFLOP a training image:")
            for side in sides:
                gflops = best[side] * (conv_flops if side == "conv only" else flops) / 1e9
                ratio = best[side] / best["keras"]
                print(
                    f"    {side:11s} {best[side]:9,.0f} img/s  {ratio:5.2f}× keras  {gflops:6.1f} GFLOP/s "
                    f"({100 * gflops / reference:3.0f} % of sgemm)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
