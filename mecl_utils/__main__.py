"""Command line: run a profile's experiment grid (Sec. III) and print Table IV (Sec. IV).

    python -m mecl_utils run --profile smoke                  # the whole protocol, resumable
    python -m mecl_utils run --profile book --data-dir DIR    # CIFAR-10 from an offline copy
    python -m mecl_utils run --profile smoke --case tiny_cnn/digits/1 --method vanilla curriculum
    python -m mecl_utils run --profile book --repetitions 10  # more repetitions: only the new ones train
    python -m mecl_utils run --profile book --condition label_noise=0.2 --score prediction_depth
    python -m mecl_utils table --profile smoke                # Table IV from the stored results
    python -m mecl_utils stats --profile book --format csv    # intervals, pooled answer, power per case
    python -m mecl_utils table --where feature_mode=memory    # only the runs of one configuration
    python -m mecl_utils exits --profile smoke                # accuracy within cost budgets (early exit)
    python -m mecl_utils plan --profile paper                 # feature modes, runs, time; trains nothing

Results go to one CSV per profile (``--results``, default ``<cache dir>/results/<profile>.csv``); a re-run
skips finished runs, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np
import pandas as pd

from mecl_utils import quiet
from mecl_utils.command_line import parser
from mecl_utils.networks.data import DataNotFoundError
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.results import ResultsStore, default_results_path
from mecl_utils.protocol.runs import cases
from mecl_utils.protocol.stages import stale_rows
from mecl_utils.report.evidence_tables import (
    case_evidence,
    evidence_text,
    pooled_evidence,
    stats_table,
)
from mecl_utils.report.table_iv import table_iv


def _selected(frame: pd.DataFrame, where: list[tuple[str, str]] | None) -> pd.DataFrame:
    """The rows whose every ``--where`` field has its value (numbers compared as numbers)."""
    for field, value in where or []:
        if field not in frame:
            raise ValueError(f"--where {field}=...: the results have no column {field!r}")
        column = frame[field]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            try:
                keep = np.isclose(column, float(value))
            except ValueError:
                raise ValueError(f"--where {field}={value}: {field} holds numbers, not {value!r}") from None
        else:
            keep = column.fillna("").astype(str) == value
        if not keep.any():
            taken = sorted({"" if pd.isna(v) else str(v) for v in column})
            raise ValueError(
                f"--where {field}={value} keeps no row; {field} takes {', '.join(map(repr, taken))}"
            )
        frame = frame[keep]
    return frame


def _profile(args: argparse.Namespace):
    """The named profile, with ``--feature-mode`` and ``--repetitions`` where the command has them and
    they were given."""
    overrides = {
        field: getattr(args, field)
        for field in ("feature_mode", "repetitions")
        if getattr(args, field, None) is not None
    }
    if getattr(args, "condition", None):
        overrides["conditions"] = tuple(dict.fromkeys(args.condition))
    if getattr(args, "score", None):
        overrides["scores"] = tuple(dict.fromkeys(args.score))
    return get_profile(args.profile, **overrides)


def _run(args: argparse.Namespace) -> None:
    if args.verbose:
        os.environ[quiet.VERBOSE_VARIABLE] = "1"  # the workers show TensorFlow's start-up notices
    from mecl_utils.run.engine import Engine
    from mecl_utils.run.grid import run_grid  # imports TensorFlow: only for the run command

    # Each branch run builds a new model, so TensorFlow's retracing notice fires; it is expected here.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    profile = _profile(args)
    unknown = [case.label for case in args.case or [] if case not in cases(profile)]
    if unknown:
        raise SystemExit(
            f"case(s) {unknown} are not in profile {profile.name!r}: {[c.label for c in cases(profile)]}"
        )
    store = ResultsStore(args.results or default_results_path(profile.name))
    start, before = time.perf_counter(), len(store)
    try:
        with Engine(args.workers, address=args.address) as engine:
            run_grid(
                profile,
                store,
                data_dir=args.data_dir,
                only=args.case,
                methods=tuple(args.method),
                engine=engine,
                verbose=args.verbose,
            )
    except KeyboardInterrupt:
        if args.verbose:
            raise
        print(
            f"\ninterrupted: {len(store)} runs stored in {store.path} ({len(store) - before} of them "
            "this time); run the same command again to resume.",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    print(f"{len(store)} runs in {store.path} ({time.perf_counter() - start:.0f} s)")
    table = _print_table(store)
    if table is not None:
        table_path = store.path.with_name(f"{store.path.stem}-table-iv.csv")
        table.to_csv(table_path, index=False)
        print(f"Table IV written to {table_path}")


def _print_table(store: ResultsStore, where: list[tuple[str, str]] | None = None) -> pd.DataFrame | None:
    frame = store.frame()
    if not frame.empty:
        frame = _selected(frame[~stale_rows(frame)], where)  # older training code's rows: never mixed in
    if frame.empty or "stage" not in frame or not (frame["stage"] == "repetition").any():
        print(f"No repetitions finished yet in {store.path}: Table IV needs the protocol's last stage.")
        return None
    table = table_iv(frame).astype({"branch": int})  # a float column when a whole network's rows have none
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(table.round(3).to_string(index=False))
    return table


def _stats(args: argparse.Namespace) -> None:
    store = ResultsStore(args.results or default_results_path(args.profile))
    frame = store.frame()
    if not frame.empty:
        frame = _selected(frame[~stale_rows(frame)], args.where)
    if frame.empty or "stage" not in frame or not (frame["stage"] == "repetition").any():
        raise SystemExit(
            f"No repetitions in {store.path} yet: run "
            f"`python -m mecl_utils run --profile {args.profile}` first."
        )
    settings = {"min_effect": args.min_effect, "alpha": args.alpha, "power": args.power}
    per_case = case_evidence(frame, **settings)
    pooled = pooled_evidence(frame, **settings, per_case=per_case)
    if args.format == "csv":
        print(evidence_text(stats_table(per_case, pooled), "csv"), end="")
        return
    reps = frame[frame["stage"] == "repetition"]
    print(
        f"{args.profile}: {reps['repetition'].nunique()} repetitions in {store.path}. Differences from "
        f"vanilla in points of test accuracy; power and repetitions needed are for {args.min_effect:g} "
        f"points at alpha {args.alpha:g}, power {args.power:g}.\n\nPer case:\n"
    )
    print(evidence_text(per_case))
    print("Pooled over cases (random effects; sign count; probability of improvement):\n")
    print(evidence_text(pooled))


def _exits(args: argparse.Namespace) -> None:
    from mecl_utils.exits import accuracy_cost, multi_exit  # imports TensorFlow

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    store = ResultsStore(args.results or default_results_path(args.profile))
    frame = store.frame()
    if not frame.empty:
        frame = _selected(frame[~stale_rows(frame)], args.where)
    if frame.empty or not (frame["stage"] == "repetition").any():
        raise SystemExit(
            f"No repetitions in {store.path} yet: run "
            f"`python -m mecl_utils run --profile {args.profile}` first."
        )
    profile = get_profile(args.profile)
    network = multi_exit.exit_network(profile, frame, data_dir=args.data_dir)
    costs = ", ".join(
        f"{name} {fraction:.0%}"
        for name, fraction in zip(network.exit_names, network.cost_fractions, strict=True)
    )
    print(f"{profile.name}: cost of leaving at each exit, of the full multi-exit network: {costs}")
    print(f"(the classifier alone: {network.classifier_fraction:.0%})")
    budget = accuracy_cost.budget_table(network, args.policy, args.budget, args.calibration)
    print(
        f"\nTest accuracy (%) per budget, {args.policy} threshold chosen on {args.calibration} to meet it; "
        "in brackets the mean test cost, and in how many runs it is over the budget:"
    )
    print(accuracy_cost.budget_summary(budget).to_string())
    curves = accuracy_cost.policy_curves(network, args.policy)
    points = accuracy_cost.operating_points(curves)
    if points < accuracy_cost.MIN_OPERATING_POINTS:
        print(
            f"\nNo area under the curve for {args.policy}: its sweep has {points} distinct operating points, "
            f"fewer than the {accuracy_cost.MIN_OPERATING_POINTS} an area can compare."
        )
        return
    print("\nArea under the accuracy-cost curves (test), paired against vanilla:")
    print(accuracy_cost.auc_tests(curves).round(3).to_string())


def _plan(args: argparse.Namespace) -> None:
    import psutil

    from mecl_utils.protocol.feature_modes import Budget
    from mecl_utils.protocol.plan import grid_plan, plan_table

    profile = _profile(args)
    store = ResultsStore(args.results or default_results_path(profile.name))
    memory, budget = psutil.virtual_memory().total, Budget.of_this_machine()

    def data(name: str):  # what run reads: only when the cache holds shards of a case's layer
        from mecl_utils.run.case_networks import load_splits

        return load_splits(profile, name, args.data_dir)

    table = plan_table(grid_plan(profile, store.frame(), budget, data=data), memory)
    print(
        f"{profile.name}: {len(table)} cases, {table['runs'].sum()} branch runs; features GiB: float32 over "
        f"every split; this machine has {memory / 2**30:.1f} GiB of memory"
    )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    print(
        f"mode ({profile.feature_mode!r}): {budget.describe()}; memory = float32 arrays in RAM, shards = "
        "float16 files on disk read batch by batch, backbone = nothing stored, the backbone cut at the "
        "branch layer runs in every branch run (for a GPU)."
    )
    if table["est. minutes"].isna().all():
        print(f"No stored runs in {store.path} to time from: benchmarks/paper_gpu.py estimates a GPU's.")
    else:
        print(
            f"est. minutes: a case's runs one after another, at the median time of the runs stored in "
            f"{store.path}; N workers take about 1/N of it."
        )


def main(argv: list[str] | None = None) -> None:
    """Errors a user can fix (missing data, a bad setting or file) end in one line on stderr, exit status 1;
    ``--verbose`` shows the traceback instead."""
    args = parser(__doc__).parse_args(argv)
    try:
        if args.command == "run":
            _run(args)
        elif args.command == "exits":
            _exits(args)
        elif args.command == "plan":
            _plan(args)
        elif args.command == "stats":
            _stats(args)
        else:
            _print_table(ResultsStore(args.results or default_results_path(args.profile)), args.where)
    except (DataNotFoundError, ValueError) as err:
        if args.verbose:
            raise
        raise SystemExit(f"error: {err}\n(run again with --verbose to see the traceback)") from None


if __name__ == "__main__":
    main(sys.argv[1:])
