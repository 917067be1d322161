"""End to end: the book built cold (empty cache) and then warm, with per-stage times and peak memory.

Runs ``python -m mecl_utils.book build`` (what ``make book`` runs) three times against one new, empty cache
folder: first cold, then warm (every chapter unchanged, so each is kept from the cold build and only the
rendering runs), then warm with ``--rerun`` (every chapter executed again, reading what the cache holds).
For each build it prints the wall time, each chapter's execution time and the rendering time (from the
runner's own lines), and the peak resident memory of the whole process tree (the runner, the notebook
kernels and the branch-training workers, summed, sampled every 0.2 s). For the cold build it splits the
work into the stages of the method:

- data: loading the data set and making the splits (``data_seconds`` of the result rows);
- backbone fine-tune and teachers: the cache sidecars record when each trained network and each set of
  teacher losses started and how long it took; a stage is the union of its intervals, so nested work (a
  teacher trained while its losses are computed) is counted once. The two train side by side
  (``case_networks.prepare_networks``), so "networks" gives the wall time of both together;
- features: the same, for the cached branch-layer features;
- branch grid, distilled branches, whole-network strategies: from the first run's start to the last run's
  end in the results file, per kind of run (runs overlap when they train in parallel workers);
- rendering: Jupyter Book turning the executed chapters into HTML.

    .venv/bin/python benchmarks/book_build.py --profile smoke
    .venv/bin/python benchmarks/book_build.py --profile book --data-dir DIR   # 10-33 min cold, 0.1-0.2 warm
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.trained_networks import teacher_recipe

ROOT = Path(__file__).resolve().parents[1]


def build(profile: str, data_dir: str | None, folder: Path, *, rerun: bool = False) -> dict:
    """Run one book build; its wall time, peak RSS of the process tree, and the runner's output lines."""
    command = [
        sys.executable,
        "-m",
        "mecl_utils.book",
        "build",
        "--profile",
        profile,
        "--out",
        str(folder / "out"),
    ]
    if data_dir:
        command += ["--data-dir", data_dir]
    if rerun:
        command.append("--rerun")
    env = {**os.environ, "MECL_CACHE_DIR": str(folder / "cache")}
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    stamps: list[float] = []  # when each line arrived, seconds since the start

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            stamps.append(time.perf_counter() - start)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peak = 0
    root = psutil.Process(process.pid)
    busy: list[tuple[float, float]] = []  # (seconds since the start, busy CPU seconds of the whole machine)
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        times = psutil.cpu_times()
        busy.append((time.perf_counter() - start, sum(times) - times.idle - times.iowait))
        time.sleep(0.2)
    reader.join()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        print("".join(lines[-40:]))
        raise SystemExit(f"the book build failed (exit {process.returncode})")
    return {"seconds": seconds, "peak_gib": peak / 2**30, "lines": lines, "stamps": stamps, "busy": busy}


def cores_in_use(busy: list[tuple[float, float]], begin: float, end: float) -> float:
    """Mean number of busy cores of the machine between ``begin`` and ``end`` (seconds since the start)."""
    inside = [(t, b) for t, b in busy if begin <= t <= end]
    if len(inside) < 2:
        return float("nan")
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def chapter_cores(result: dict) -> dict[str, float]:
    """Each executed chapter's mean number of busy cores, from the line that reports its end."""
    found = {}
    for line, stamp in zip(result["lines"], result["stamps"], strict=True):
        if match := re.search(r"executed notebooks/(\w+)\.md in ([\d.]+) s", line):
            found[match[1]] = cores_in_use(result["busy"], stamp - float(match[2]), stamp)
    return found


def chapter_seconds(lines: list[str]) -> dict[str, float]:
    found = {}
    for line in lines:
        if match := re.search(r"executed notebooks/(\w+)\.md in ([\d.]+) s", line):
            found[match[1]] = float(match[2])
        if match := re.search(r"rendered the book in ([\d.]+) s", line):
            found["(rendering)"] = float(match[1])
    return found


def union_seconds(intervals: list[tuple[float, float]], minus: list[tuple[float, float]] = ()) -> float:
    """Length of the union of ``intervals`` outside the union of ``minus`` (sampled at 0.05 s)."""
    if not intervals:
        return 0.0
    lo, hi, step = min(a for a, _ in intervals), max(b for _, b in intervals), 0.05
    total = 0.0
    for i in range(int((hi - lo) / step) + 1):
        t = lo + (i + 0.5) * step
        if any(a <= t < b for a, b in intervals) and not any(a <= t < b for a, b in minus):
            total += step
    return total


def stages(cache: Path, profile: str) -> dict[str, float]:
    """Seconds per stage of a cold build, from the cache sidecars and the results file (module docstring)."""
    intervals: dict[str, list[tuple[float, float]]] = {"backbone": [], "teachers": [], "features": []}
    results = pd.read_csv(cache / "results" / f"{profile}.csv")
    settings = get_profile(profile)
    for sidecar in cache.glob("*/*.json"):
        record = json.loads(sidecar.read_text())
        if "started" not in record:
            continue
        span = (record["started"], record["started"] + record["seconds"])
        kind, parts = record["kind"], record["parts"]
        if kind in ("classifier", "test_accuracy"):
            # A backbone trains from the backbone seed stream, an independent teacher from its own.
            is_backbone = kind == "test_accuracy" or (
                parts["network"] in settings.backbones
                and parts["seed"] == teacher_recipe(settings, "self", parts["network"], settings.seed)[1]
            )
            intervals["backbone" if is_backbone else "teachers"].append(span)
        elif kind == "teacher_losses":
            intervals["teachers"].append(span)
        elif kind == "features":
            intervals["features"].append(span)
    stage = results.get("stage", pd.Series("", index=results.index))
    groups = {
        "branch grid": results[stage.isin(["vanilla_search", "curriculum_search", "repetition"])],
        "distilled branches": results[stage == "distillation"],
        "whole-network strategies": results[stage == "network_strategy"],
    }
    spans = {f"{name} ({len(rows)} runs)": _span(rows) for name, rows in groups.items() if len(rows)}
    return {
        "data": float(results["data_seconds"].max()),
        "backbone fine-tune": union_seconds(intervals["backbone"]),
        "teachers": union_seconds(intervals["teachers"]),
        "networks (both, wall)": union_seconds(intervals["backbone"] + intervals["teachers"]),
        "features": union_seconds(intervals["features"], intervals["backbone"] + intervals["teachers"]),
        **spans,
    }


def _span(rows: pd.DataFrame) -> float:
    """From the first run's start to the last run's end (runs overlap when they train side by side)."""
    finished = pd.to_datetime(rows["finished"]).map(pd.Timestamp.timestamp)
    return float(finished.max() - (finished - rows["seconds"]).min())


def report(name: str, result: dict) -> None:
    minutes, peak = result["seconds"] / 60, result["peak_gib"]
    print(f"{name}: {result['seconds']:.0f} s ({minutes:.1f} min), peak RSS {peak:.2f} GiB")
    cores = chapter_cores(result)
    for chapter, seconds in chapter_seconds(result["lines"]).items():
        used = f", {cores[chapter]:.2f} of {os.cpu_count()} cores busy" if chapter in cores else ""
        print(f"  {chapter}: {seconds:.1f} s{used}")
    whole = cores_in_use(result["busy"], 0, result["seconds"])
    print(f"  whole build: {whole:.2f} of {os.cpu_count()} cores busy on average")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="smoke", choices=["smoke", "book", "paper"])
    parser.add_argument("--data-dir", default=None, help="folder holding cifar-10-batches-py/")
    parser.add_argument("--keep", type=Path, help="keep the cache and the built book in this folder")
    parser.add_argument("--cold-only", action="store_true", help="stop after the cold build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mecl-bench-") as scratch:
        folder = args.keep or Path(scratch)
        print(f"profile {args.profile}, {os.cpu_count()} CPU cores, cache and output in {folder}", flush=True)
        cold = build(args.profile, args.data_dir, folder)
        report("cold build (empty cache)", cold)
        timings = stages(folder / "cache", args.profile)
        timings["rendering"] = chapter_seconds(cold["lines"]).get("(rendering)", float("nan"))
        print("  stages: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
        pd.DataFrame(cold["busy"], columns=["seconds", "busy_cpu_seconds"]).to_csv(folder / "cpu_cold.csv")
        if args.cold_only:
            return
        warm = build(args.profile, args.data_dir, folder)
        kept = sum("unchanged, kept from" in line for line in warm["lines"])
        report(f"warm build (same cache; {kept} chapters kept, not executed)", warm)
        rerun = build(args.profile, args.data_dir, folder, rerun=True)
        report("warm build with --rerun (same cache, every chapter executed)", rerun)
    peak = max(cold["peak_gib"], warm["peak_gib"], rerun["peak_gib"])
    print(
        f"summary: {args.profile} book cold {cold['seconds'] / 60:.1f} min, "
        f"warm {warm['seconds'] / 60:.1f} min, warm with --rerun {rerun['seconds'] / 60:.1f} min, "
        f"peak RSS {peak:.2f} GiB"
    )


if __name__ == "__main__":
    main()
