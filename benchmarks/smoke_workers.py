"""How many Ray workers the smoke protocol should train on: wall time and machine-wide CPU per setting.

Runs the cold smoke protocol (``python -m mecl_utils run --profile smoke --workers N``, a fresh cache each
time) for every ``--workers`` value, sides alternated (the order forward, then reversed, per round). With
``--beside-load`` a one-thread busy loop runs beside each run, as the other pytest-xdist worker does in the
suite, so that the two vCPUs are contended as they are in ``make test``. For each run it prints the wall
time and the machine's busy core-seconds from ``/proc/stat`` (user, nice, system, irq, softirq; the busy
loop's own seconds subtracted), which count the Ray workers and daemons that a process's own rusage misses.
Run it on an otherwise idle machine::

    .venv/bin/python benchmarks/smoke_workers.py --workers 2 1 0 --rounds 2
    .venv/bin/python benchmarks/smoke_workers.py --workers 2 1 0 --rounds 2 --beside-load
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

ROOT = Path(__file__).resolve().parents[1]
BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq of /proc/stat's "cpu" line


def busy_seconds() -> float:
    """The machine's busy CPU seconds since boot, all cores together."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(fields[index]) for index in BUSY_FIELDS) / os.sysconf("SC_CLK_TCK")


def busy_loop() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def one_run(workers: int, beside_load: bool) -> tuple[float, float]:
    """(wall seconds, busy core-seconds) of one cold smoke protocol on ``workers`` workers."""
    with tempfile.TemporaryDirectory() as cache:
        environment = {**os.environ, "MECL_CACHE_DIR": cache}
        command = [sys.executable, "-m", "mecl_utils", "run", "--profile", "smoke", "--workers", str(workers)]
        load = busy_loop() if beside_load else None
        try:  # the busy loop ends with the run, however the run ends
            load_start = psutil.Process(load.pid).cpu_times() if load else None
            busy, start = busy_seconds(), time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
            wall, busy = time.perf_counter() - start, busy_seconds() - busy
            if load is not None:
                end = psutil.Process(load.pid).cpu_times()
                busy -= (end.user + end.system) - (load_start.user + load_start.system)
        finally:
            if load is not None:
                load.kill()
                load.wait()
        if done.returncode:
            raise SystemExit(f"--workers {workers} failed:\n{done.stderr[-3000:]}")
        return wall, busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1, 0])
    parser.add_argument("--rounds", type=int, default=1, help="each round runs the order forward, then back")
    parser.add_argument("--beside-load", action="store_true", help="a one-thread busy loop beside each run")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; beside load: {args.beside_load}", flush=True)
    figures: dict[int, list[tuple[float, float]]] = {workers: [] for workers in args.workers}
    for _ in range(args.rounds):
        for workers in [*args.workers, *reversed(args.workers)]:
            wall, busy = one_run(workers, args.beside_load)
            figures[workers].append((wall, busy))
            print(f"workers={workers}: {wall:6.1f} s wall, {busy:6.1f} busy core-s", flush=True)
    print("medians:")
    for workers, runs in figures.items():
        wall = statistics.median(run[0] for run in runs)
        busy = statistics.median(run[1] for run in runs)
        print(f"  workers={workers}: {wall:6.1f} s wall, {busy:6.1f} busy core-s ({len(runs)} runs)")


if __name__ == "__main__":
    main()
