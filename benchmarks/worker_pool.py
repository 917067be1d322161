"""Grid throughput: branch runs one after another in this process vs as parallel Ray tasks.

A stage of the protocol (Sec. III) trains independent branches. This trains the same runs, vanilla
repetitions at the book profile's sizes on random features of each book placement's shape, three ways:
in this process (``Engine(0)``, TensorFlow's default threads), and through ``Engine(1)`` and
``Engine(N)`` (an embedded Ray instance, one single-threaded TensorFlow per task). Images/s counts every
training image of every run over the wall time of the whole batch of runs, so model building, tracing,
validation and evaluation are included: what a grid actually gets. Start-up (Ray, TensorFlow per worker)
is timed separately (every worker starts and trains one run first); a grid pays it once. On the project's
2-vCPU machine the in-process figure varies from run to run (an identical run sometimes keeps both vCPUs
busy, sometimes one: benchmarks/README.md), so compare several invocations.

    .venv/bin/python benchmarks/worker_pool.py [--runs 4] [--train 8192] [--epochs 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.runs import Case, CaseData, RunSpec
from mecl_utils.run.engine import Engine, default_workers

SHAPES = {1: (8, 8, 32), 2: (4, 4, 128)}  # the book profile's features at conv_dw_4_relu and conv_dw_7_relu


def case_data(shape: tuple[int, ...], n_train: int, n_eval: int) -> CaseData:
    rng = np.random.default_rng(0)
    sizes = {"train": n_train, "val": n_eval, "hparam": n_eval, "test": n_eval}
    return CaseData(
        features={name: rng.standard_normal((n, *shape)).astype("float32") for name, n in sizes.items()},
        labels={name: rng.integers(0, 10, n) for name, n in sizes.items()},
        teacher_losses={},
        num_classes=10,
        layer="random",
    )


def timed_runs(pool: Engine, specs: list[RunSpec], profile, data) -> float:
    start = time.perf_counter()
    for _ in pool.run(specs, profile, data):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--train", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    print(f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}, {os.cpu_count()} CPU cores")
    profile = get_profile("book", branch_epochs=args.epochs)
    images = args.runs * args.epochs * args.train
    summary = []
    for number, shape in SHAPES.items():
        data = case_data(shape, args.train, 1000)
        case = Case("mobilenet", "cifar10", number)
        specs = [
            RunSpec("repetition", case, "vanilla", "adam", 1e-3, None, None, repetition, "test")
            for repetition in range(args.runs)
        ]
        print(f"branch {number}, features {shape}: {args.runs} runs × {args.epochs} epochs × {args.train}")
        rates = {"in this process": images / timed_runs(Engine(0), specs, profile, data)}
        for workers in sorted({1, args.workers}):
            with Engine(workers) as pool:
                start = time.perf_counter()
                timed_runs(pool, specs[:workers], profile, data)  # starts every worker, one run each
                print(f"  {workers} worker(s): start-up plus a first run {time.perf_counter() - start:.1f} s")
                rates[f"{workers} worker(s)"] = images / timed_runs(pool, specs, profile, data)
        for name, rate in rates.items():
            print(f"  {name}: {rate:,.0f} img/s ({rate / rates['in this process']:.2f}x)")
        best = max(rates, key=rates.get)
        summary.append(f"branch {number} {best} {rates[best] / rates['in this process']:.2f}x")
    print("summary: grid img/s vs in-process " + ", ".join(summary))


if __name__ == "__main__":
    main()
