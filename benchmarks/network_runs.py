"""Whole-network runs of the strategies chapter (issue 16), one after another as one Ray worker trains them.

Each run trains a multi-exit network end to end or layer-wise (``network_runs.train_network_run``) in the
chapter's book setting (2,000 images, 2 epochs by default) and predicts every exit on val, hparam and test.
TensorFlow is pinned to one thread, as in an engine task. Every strategy runs twice (two repetitions), so the
second pass shows what a worker pays once it has traced its networks. Prints, per run, the training seconds
(the row's ``seconds``) and the wall seconds of the whole run, model building and prediction included.

    .venv/bin/python benchmarks/network_runs.py --data-dir DIR [--images 2000] [--epochs 2] [--passes 2]

To compare two versions of the package, run this script under each one's PYTHONPATH, alternating.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf

from mecl_utils.protocol.profiles import get_profile
from mecl_utils.run.case_networks import load_splits
from mecl_utils.strategies.network_runs import (
    NETWORK_STRATEGIES,
    NetworkRun,
    network_setting,
    train_network_run,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    profile = network_setting(get_profile("book"), args.images, args.epochs, 3, data_dir=args.data_dir)
    dataset, splits = load_splits(profile, "cifar10", args.data_dir)
    losses = np.zeros(len(splits.train))  # vanilla runs: the teacher's losses are not read
    totals = []
    for repetition in range(args.passes):
        total = 0.0
        for strategy in NETWORK_STRATEGIES:
            run = NetworkRun("mobilenet", "cifar10", strategy, "vanilla", repetition, None, None)
            start = time.perf_counter()
            row, _ = train_network_run(profile, dataset, splits, losses, run)
            wall = time.perf_counter() - start
            total += wall
            accuracy = row["test_accuracy_final"]
            print(f"pass {repetition + 1} {strategy:17s} training {row['seconds']:6.1f} s  "
                  f"run {wall:6.1f} s  test accuracy final {accuracy:.3f}", flush=True)  # fmt: skip
        totals.append(total)
    print("wall seconds per pass:", " ".join(f"{t:.1f}" for t in totals))


if __name__ == "__main__":
    main()
