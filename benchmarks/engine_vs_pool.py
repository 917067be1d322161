"""The branch grid on local Ray vs on the process pool it replaced, sides alternated in one run.

Each side is the real command line, `python -m mecl_utils run`, on the same case and the same warm cache
(networks and features prepared once beforehand), writing to a fresh results file each time, so what
differs is how the branch runs reach the CPU cores: Ray tasks (this checkout) or `workers.RunPool` (the
commit before Ray, checked out into a temporary git worktree). For each run it prints the wall time and the
peak resident memory of the whole process tree (driver, Ray's processes or the pool's workers), sampled
every 0.2 s, the summed seconds of the runs' training (as the workers timed it), and what is left of the
wall time once the workers' share of those is taken off (start-up, scheduling, preparing the cases): this
machine's speed swings up to threefold within minutes, which moves the runs' seconds but hardly that rest.
Then the time `ray.init` takes, and whether the sides stored identical accuracies.

``--nice15`` adds a third side: Ray with its workers at Ray's own default niceness, 15
(``RAY_worker_niceness=15``), instead of the 0 of the pool's workers, which the engine's embedded instance
has used since 2026-12-03.

    .venv/bin/python benchmarks/engine_vs_pool.py --data-dir DIR [--before 9c54e1b] [--rounds 2]
        [--profile book] [--case mobilenet/cifar10/1 [--case mobilenet/cifar10/2]] [--nice15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from worktree import ROOT, checked_out


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


WORKERS = 2  # the embedded instance's CPUs and the pool's processes on this machine


def timed_grid(checkout: Path, args, results: Path, env: dict) -> tuple[float, int]:
    """Wall seconds and peak tree RSS (bytes) of one `python -m mecl_utils run` in ``checkout``."""
    command = [sys.executable, "-m", "mecl_utils", "run", "--profile", args.profile]
    command += ["--results", str(results), "--data-dir", args.data_dir]
    for case in args.case:
        command += ["--case", case]
    start, peak = time.perf_counter(), 0
    process = subprocess.Popen(
        command,
        cwd=checkout,
        env={**env, "PYTHONPATH": str(checkout)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        peak = max(peak, tree_rss(watched))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"{checkout}: exit {process.returncode}\n{process.stderr.read()[-3000:]}")
    return seconds, peak


def accuracies(path: Path) -> dict:
    import pandas as pd

    frame = pd.read_csv(path)
    return dict(zip(frame["run_id"], frame["accuracy"], strict=True))


def run_seconds(path: Path) -> float:
    """The summed training seconds of a grid's runs, as the workers measured them."""
    import pandas as pd

    frame = pd.read_csv(path)
    return float(frame["seconds"].sum()) if "seconds" in frame else float("nan")


def ray_init_seconds(env: dict, tries: int = 3) -> list[float]:
    code = (
        "import time; from mecl_utils.run.engine import Engine\n"
        "e = Engine(2); t = time.perf_counter(); e._start(); print(time.perf_counter() - t); e.close()"
    )
    seconds = []
    for _ in range(tries):
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        seconds.append(float(done.stdout.split()[-1]))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--before", default="9c54e1b", help="the last commit with workers.RunPool")
    parser.add_argument("--profile", default="book")
    parser.add_argument("--case", action="append", help="repeatable; default mobilenet/cifar10/1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-warm-up", action="store_true", help="the cache is warm already")
    parser.add_argument("--nice15", action="store_true", help="add Ray with its workers at niceness 15")
    args = parser.parse_args()
    args.case = args.case or ["mobilenet/cifar10/1"]

    with (
        tempfile.TemporaryDirectory(prefix="mecl-bench-") as folder,
        checked_out(args.before, Path(folder) / "before") as before,
    ):
        scratch = Path(folder)
        env = {**os.environ, "MECL_CACHE_DIR": os.environ.get("MECL_CACHE_DIR", str(scratch / "cache"))}
        env["MECL_WORKERS"] = str(WORKERS)
        shared_weights = ROOT.parent / "shared" / "data"  # the worktree has no ../shared beside it
        if "MECL_WEIGHTS_DIR" not in env and shared_weights.is_dir():
            env["MECL_WEIGHTS_DIR"] = str(shared_weights)
        sides = {"ray": ROOT, "pool": before}
        side_env = {"ray": env, "pool": env}
        if args.nice15:
            sides["ray-nice15"] = ROOT
            side_env["ray-nice15"] = {**env, "RAY_worker_niceness": "15"}
        if not args.skip_warm_up:
            cases = " ".join(args.case)
            print(f"warming the cache ({args.profile}, {cases}): networks, features", flush=True)
            timed_grid(ROOT, args, scratch / "warm.csv", env)
        figures: dict[str, list[tuple[float, int]]] = {side: [] for side in sides}
        order = []
        for number in range(args.rounds):
            order += list(sides) if number % 2 == 0 else list(sides)[::-1]  # ray pool | pool ray ...
        for index, side in enumerate(order):
            results = scratch / f"{side}-{index}.csv"
            seconds, peak = timed_grid(sides[side], args, results, env=side_env[side])
            figures[side].append((seconds, peak))
            in_runs = run_seconds(results)
            outside = seconds - in_runs / WORKERS
            print(
                f"  {side:10s} run {index + 1}: {seconds:6.1f} s, runs {in_runs:7.1f} s summed, "
                f"outside runs {outside:5.1f} s, peak tree RSS {peak / 2**30:.2f} GiB",
                flush=True,
            )
        stored = [accuracies(scratch / f"{side}-{index}.csv") for index, side in enumerate(order)]
        print(f"identical accuracies on every side: {all(one == stored[0] for one in stored)}")
        for side, rows in figures.items():
            times = [seconds for seconds, _ in rows]
            peak = max(peak for _, peak in rows)
            print(
                f"{side:10s}: median {statistics.median(times):.1f} s over {len(times)} grids; "
                f"peak tree RSS {peak / 2**30:.2f} GiB"
            )
        inits = ray_init_seconds(env)
        print(f"ray.init (embedded, 2 CPUs): {', '.join(f'{s:.1f}' for s in inits)} s")


if __name__ == "__main__":
    main()
