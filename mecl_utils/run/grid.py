"""The grid: every case of a profile run, cases side by side (different cases do not depend on each other).

The protocol (Sec. III) runs, per case, the vanilla search, then the curriculum search with its choices,
then the repetitions with the curriculum search's (``stages.case_stages``). Run case after case, the
workers idle at every stage's end while its last runs finish, and a cluster with more workers than a stage
has runs is never full. :func:`run_cases` keeps several cases open on one engine instead: every open case
has its current stage in flight; the moment a stage's last run is stored, that case's next stage starts;
when a case is done, the next one is prepared and started. Each run is stored by the driver as it finishes,
so a grid stopped anywhere resumes with every finished run kept, whatever order the cases ran in.

Up to ``CASES_IN_FLIGHT`` cases are open together, and another opens only while the features the open
cases hold in memory, with room for one more case as large as the largest of them, fit the feature memory
budget (``feature_modes.Budget``). In process (``Engine(0)``) the cases run one after another.

``run_grid`` is the whole profile: every network the cases need trained first, side by side
(``case_networks.prepare_grid_networks``), then every case prepared (``prepare.prepare_case``) and run here,
with the branch runs as parallel Ray tasks (``engine.Engine``), under one progress bar.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.protocol.branch_runs import store_run, train_run
from mecl_utils.protocol.feature_modes import Budget
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import Case, CaseData, RunSpec, cases
from mecl_utils.protocol.stages import case_stages, planned_runs, stale_rows
from mecl_utils.run.case_networks import prepare_grid_networks
from mecl_utils.run.engine import Engine
from mecl_utils.run.prepare import prepare_case
from mecl_utils.training.classifier_wise import TRAINING_VERSION

__all__ = ["CASES_IN_FLIGHT", "held_bytes", "run_cases", "run_grid"]

CASES_IN_FLIGHT = 2  # enough to keep the workers busy across a stage's end; each holds its features


@dataclass(eq=False)
class _OpenCase:
    data: CaseData
    stages: object  # the case's stage generator
    run_ids: dict[RunSpec, str] = field(default_factory=dict)
    remaining: set[RunSpec] = field(default_factory=set)


def held_bytes(data: CaseData) -> int:
    """Bytes of a case's branch inputs held in memory (features, or images in backbone mode)."""
    return sum(x.nbytes for x in data.features.values() if isinstance(x, np.ndarray))


def run_cases(
    profile: Profile,
    cases: Sequence[Case],
    prepare: Callable[[Case], CaseData],
    store: ResultsStore,
    *,
    engine,
    methods: tuple[str, ...] = METHODS,
    memory_bytes: int | None = None,
    on_run: Callable[[RunSpec, str, bool], None] | None = None,
    on_prepare: Callable[[Case], None] | None = None,
    in_flight: int = CASES_IN_FLIGHT,
) -> None:
    """Every stage of every case in ``cases`` on ``engine``, cases side by side (module docstring).

    ``prepare(case)`` gives a case's data when it opens (``on_prepare(case)`` is called first).
    ``memory_bytes``: the feature memory budget (None: no limit). ``on_run(spec, run_id, skipped)`` is
    called for every run: with ``skipped`` when it was in ``store`` already, else once it is stored.
    """
    if in_flight < 1:
        raise ValueError(f"in_flight must be at least 1, got {in_flight}")
    waiting = list(cases)
    open_cases: dict[Case, _OpenCase] = {}

    def may_open() -> bool:
        if not waiting:
            return False
        if not open_cases:
            return True
        if engine.in_process or len(open_cases) >= in_flight:
            return False
        if memory_bytes is None:
            return True
        held = [held_bytes(state.data) for state in open_cases.values()]
        return sum(held) + max(held) <= memory_bytes

    def start_next_stage(state: _OpenCase) -> bool:
        """Start the case's next stage with unfinished runs; False when every stage is stored."""
        for specs in state.stages:
            state.run_ids = {spec: spec.run_id(profile, state.data) for spec in specs}
            missing = []
            for spec, run_id in state.run_ids.items():
                if run_id in store:
                    if on_run is not None:
                        on_run(spec, run_id, True)
                else:
                    missing.append(spec)
            if missing:
                state.remaining = set(missing)
                engine.start_runs(train_run, missing, profile, state.data)
                return True
        return False

    def open_more() -> None:
        while may_open():
            case = waiting.pop(0)
            if on_prepare is not None:
                on_prepare(case)
            data = prepare(case)
            state = _OpenCase(data, case_stages(profile, case, data, store, methods=methods))
            if start_next_stage(state):
                open_cases[case] = state

    open_more()
    for spec, result in engine.finished_runs():
        state = open_cases[spec.case]
        run_id = state.run_ids[spec]
        store_run(store, run_id, result)  # by the driver: outputs, then the row
        if on_run is not None:
            on_run(spec, run_id, False)
        state.remaining.discard(spec)
        if not state.remaining and not start_next_stage(state):
            del open_cases[spec.case]
            open_more()


def run_grid(
    profile: Profile,
    store: ResultsStore,
    *,
    data_dir: str | os.PathLike | None = None,
    only: list[Case] | None = None,
    methods: tuple[str, ...] = METHODS,
    workers: int | None = None,
    engine: Engine | None = None,
    verbose: bool = False,
) -> tuple[list[str], set[str]]:
    """Every case of ``profile`` (or ``only`` these) prepared and run; finished runs are skipped.

    ``engine``: where the runs train (an ``engine.Engine``, e.g. one on a Ray cluster); without one, an
    embedded Ray instance with ``workers`` CPUs (None: one per core; 0: no Ray, all in this process).
    Every network the cases need trains first, side by side (``prepare_grid_networks``), then the cases
    run side by side (``grid.run_cases``). Returns the run_ids of the grid (as runs finish, finished
    ones first within each stage) and the data sources the cases read.

    Rows that older training code stored are never reused (their run_ids cannot match); the first time the
    grid trains a run while the store holds such rows, one line says so.
    """
    selected = list(only) if only is not None else cases(profile)
    run_ids: list[str] = []
    sources: set[str] = set()
    stale = int(stale_rows(store.frame()).sum()) if len(store) else 0
    said = False
    total = len(selected) * planned_runs(profile, methods)
    with contextlib.ExitStack() as stack:
        engine = engine if engine is not None else stack.enter_context(Engine(workers))
        bar = stack.enter_context(tqdm(total=total, unit="run", desc=f"{profile.name} ({engine.describe()})"))
        bar.set_postfix_str("networks")
        prepare_grid_networks(profile, selected, data_dir=data_dir, engine=engine, verbose=verbose)

        def prepare(case: Case) -> CaseData:
            data = prepare_case(profile, case, data_dir=data_dir, engine=engine, verbose=verbose)
            sources.add(data.info["data_source"])
            return data

        def advance(spec: RunSpec, run_id: str, skipped: bool) -> None:
            nonlocal said
            if stale and not skipped and not said:
                bar.write(
                    f"{stale} runs in {store.path} were stored by older training code: they are not "
                    f"reused, and this grid trains its runs anew (training version {TRAINING_VERSION})."
                )
                said = True
            run_ids.append(run_id)
            done = " (done before)" if skipped else ""
            bar.set_postfix_str(f"{spec.case.label}: {spec.stage} {spec.method}{done}")
            bar.update()

        run_cases(
            profile,
            selected,
            prepare,
            store,
            engine=engine,
            methods=methods,
            memory_bytes=Budget.of_this_machine().memory_bytes,
            on_run=advance,
            on_prepare=lambda case: bar.set_postfix_str(f"{case.label}: preparing"),
        )
    return run_ids, sources
