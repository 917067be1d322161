"""The smoke protocol in one process: this checkout against an earlier commit, sides alternated.

Most of the test suite's work is short runs: the smoke profile's branch runs (8×8 digits, a few epochs of a
few batches) in the book's chapters, the command-line tests and the two-node Ray tests. Their cost is
per-run and per-epoch overhead (tracing, building datasets and their iterators), not arithmetic. Each side
runs the real command line, `python -m mecl_utils run --profile smoke --workers 0` (no Ray: one process,
TensorFlow's default threads), on a fresh cache, so it trains the networks, scores the teachers and runs
the whole grid. The earlier commit is checked out into a temporary git worktree. Prints each side's wall
and CPU seconds (user + system, the process and its children), the ratio of the medians, and whether both
sides stored the same results: every row's accuracies, validation curve and learning rates, and every
array kept in the cache (branch outputs, features, teacher losses), to the last bit. First, it times what
starting one pass over 1,000 validation rows costs: Keras' array adapter against a ``from_tensor_slices``
pipeline of the same batches (``classifier_wise._labelled``), one thread.

    .venv/bin/python benchmarks/smoke_grid.py [--before HEAD~1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from worktree import ROOT, checked_out

TIMINGS = ("seconds", "finished", "epoch_seconds", "networks_seconds")  # columns that time, not compute


def run_side(source: Path, cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one smoke protocol with ``source``'s package, into a fresh ``cache``."""
    env = {**os.environ, "MECL_CACHE_DIR": str(cache), "PYTHONPATH": str(source)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mecl_utils", "run", "--profile", "smoke", "--workers", "0"],
        cwd=source,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def differences(first: Path, second: Path) -> list[str]:
    """What differs between two caches' results and kept arrays (timings aside); [] when nothing does."""
    found = []
    for table in sorted((first / "results").glob("*.csv")):
        a, b = (pd.read_csv(folder / "results" / table.name) for folder in (first, second))
        a, b = (frame.drop(columns=[c for c in TIMINGS if c in frame]) for frame in (a, b))
        a, b = (frame.sort_values(list(frame.columns[:1])).reset_index(drop=True) for frame in (a, b))
        if not a.equals(b):
            found.append(f"results/{table.name}")
    for archive in sorted(first.rglob("*.npz")):
        other = second / archive.relative_to(first)
        if not other.is_file():
            found.append(f"{archive.relative_to(first)} (missing)")
            continue
        with np.load(archive) as a, np.load(other) as b:
            if a.files != b.files or any(not np.array_equal(a[name], b[name]) for name in a.files):
                found.append(str(archive.relative_to(first)))
    return found


def iterator_start_ms(repeats: int = 20) -> dict[str, float]:
    """Median milliseconds to start iterating 1,000 rows of 8×8×32 features in batches of 32, per pipeline."""
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((1000, 8, 8, 32)).astype(np.float32), rng.integers(0, 10, 1000)
    pipelines = {
        "keras array adapter": ArrayDataAdapter(x, y, batch_size=32, shuffle=False).get_tf_dataset(),
        "from_tensor_slices": tf.data.Dataset.from_tensor_slices((x, y)).batch(32),
    }
    found = {}
    for name, dataset in pipelines.items():
        iter(dataset)  # the first start builds what later ones reuse
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            iter(dataset)
            seconds.append(time.perf_counter() - start)
        found[name] = 1000 * statistics.median(seconds)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="HEAD~1", help="the earlier commit (default: HEAD~1)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of before-now-now-before")
    args = parser.parse_args()
    for name, ms in iterator_start_ms().items():
        print(f"starting a pass over 1,000 validation rows, {name}: {ms:.2f} ms", flush=True)
    measured: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
    with (
        tempfile.TemporaryDirectory() as folder,
        checked_out(args.before, Path(folder) / "before") as before,
    ):
        scratch = Path(folder)
        for round_ in range(args.rounds):
            for side in ("before", "now", "now", "before"):
                cache = scratch / f"cache-{side}"
                shutil.rmtree(cache, ignore_errors=True)
                wall, cpu = run_side(before if side == "before" else ROOT, cache)
                measured[side].append((wall, cpu))
                print(f"round {round_ + 1} {side:6s} wall {wall:6.1f} s  cpu {cpu:6.1f} s", flush=True)
        found = differences(scratch / "cache-before", scratch / "cache-now")
    for index, what in enumerate(("wall", "cpu")):
        old, new = (statistics.median(m[index] for m in measured[side]) for side in ("before", "now"))
        print(f"median {what}: before {old:.1f} s, now {new:.1f} s, {old / new:.2f}x")
    print(
        "results and kept arrays:",
        "identical to the last bit" if not found else f"differ: {', '.join(found)}",
    )


if __name__ == "__main__":
    main()
