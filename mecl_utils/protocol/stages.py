"""The paper's experimental protocol (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. III-IV), resumable.

For every case (backbone, dataset, branch number):

1. *Vanilla search*: every optimizer × learning rate of the profile trains a vanilla branch; the best
   accuracy on the hyper-parameter split picks the optimizer and learning rate.
2. *Curriculum search*: with that optimizer and learning rate, every teacher × pacing function (Table III)
   trains a curriculum branch; the best on the hyper-parameter split picks teacher and pacing. Anti- and
   random curriculum reuse these choices, as the paper does.
3. *Repetitions*: each repetition trains the methods afresh from one shared initialisation and reports
   their accuracy on the test split; vanilla and curriculum, the main comparison, may have more of them
   than the other two (``Profile.repetitions_of``). Table IV (``table_iv.table_iv``) summarises them.
4. *Conditions* (only where the profile names ``conditions`` or ``scores``): the profile's repetitions
   again under each condition (a shorter budget, noisy labels, less data), curriculum and anti with the
   chosen teacher and each score, the same choices and seeds, stage ``condition``.

Every run is stored under its ``run_id`` (``runs.run_identity``). Finished runs are skipped, so a killed
grid resumes where it stopped. The test split is never used for a choice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pandas as pd

from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.protocol.branch_runs import store_run, train_run
from mecl_utils.protocol.conditions import PAPER_CONDITION
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import Case, CaseData, RunSpec
from mecl_utils.training.classifier_wise import TRAINING_VERSION

__all__ = ["case_stages", "condition_specs", "planned_runs", "run_case", "run_specs", "stale_rows"]


def _best(store: ResultsStore, run_ids: list[str], keys: tuple[str, ...]) -> dict:
    """The run_id and settings of the run with the highest accuracy among ``run_ids`` (first wins ties)."""
    frame = store.frame().set_index("run_id").loc[run_ids]
    best = frame["accuracy"].to_numpy().argmax()
    return {"run_id": frame.index[best], **{key: frame.iloc[best][key] for key in keys}}


def case_stages(
    profile: Profile, case: Case, data: CaseData, store: ResultsStore, *, methods: tuple[str, ...] = METHODS
) -> Iterator[list[RunSpec]]:
    """The three stages of ``case``, in order: each is yielded once every run of the one before is stored.

    The best vanilla-search run in ``store`` picks the curriculum search's optimizer and learning rate, and
    the best curriculum-search run picks the repetitions' teacher and pacing.
    """

    def ids(specs: list[RunSpec]) -> list[str]:
        return [spec.run_id(profile, data) for spec in specs]

    vanilla = [
        RunSpec("vanilla_search", case, "vanilla", opt, lr, None, None, 0, "hparam")
        for opt in profile.optimizers
        for lr in profile.learning_rates
    ]
    yield vanilla
    chosen = _best(store, ids(vanilla), ("optimizer", "learning_rate"))
    optimizer, learning_rate = str(chosen["optimizer"]), float(chosen["learning_rate"])
    curriculum = [
        RunSpec(
            "curriculum_search", case, "curriculum", optimizer, learning_rate, teacher, pacing, 0, "hparam"
        )
        for teacher in profile.teachers
        for pacing in profile.pacings
    ]
    yield curriculum
    chosen = _best(store, ids(curriculum), ("teacher", "pacing"))
    teacher, pacing = str(chosen["teacher"]), str(chosen["pacing"])
    repetitions = [
        RunSpec(
            "repetition",
            case,
            method,
            optimizer,
            learning_rate,
            teacher if method in ("curriculum", "anti") else None,
            pacing if method != "vanilla" else None,
            repetition,
            "test",
        )
        for repetition in range(max(profile.repetitions_of(method) for method in methods))
        for method in methods
        if repetition < profile.repetitions_of(method)
    ]
    yield repetitions
    if profile.conditions or profile.scores:
        yield condition_specs(profile, repetitions, methods=methods)


def condition_specs(
    profile: Profile, repetitions: list[RunSpec], *, methods: tuple[str, ...] = METHODS
) -> list[RunSpec]:
    """The conditions stage of a case from its Table IV ``repetitions``: under each of the profile's
    conditions (the paper's alone when it names scores but no condition), each of its ``repetitions`` with
    vanilla and random curriculum once, and curriculum and anti-curriculum once per measure of difficulty:
    Table IV's chosen teacher and each of the profile's ``scores``.

    Every run keeps the Table IV choices (optimizer, learning rate, pacing) and its repetition's seeds, so it
    pairs with the other methods of its repetition. A run identical to a Table IV one (the paper's condition,
    the chosen teacher) has its run_id and is not trained again.
    """
    plain = [spec for spec in repetitions if spec.repetition < profile.repetitions]
    chosen = next((spec.teacher for spec in plain if spec.teacher), None)
    teachers = tuple(dict.fromkeys((chosen, *profile.scores)))
    return [
        dataclasses.replace(spec, stage="condition", condition=condition, teacher=teacher)
        for condition in profile.conditions or (PAPER_CONDITION,)
        for spec in plain
        if spec.method in methods
        for teacher in (teachers if spec.method in ("curriculum", "anti") else (None,))
    ]


def run_case(
    profile: Profile,
    case: Case,
    data: CaseData,
    store: ResultsStore,
    *,
    methods: tuple[str, ...] = METHODS,
    on_run: Callable[[RunSpec, bool], None] | None = None,
    engine=None,
) -> None:
    """The three stages for one case; finished runs (by run_id) are skipped. ``on_run(spec, skipped)``.

    The runs of a stage are independent: ``engine`` (an ``engine.Engine``) trains them as parallel Ray
    tasks, and each is stored as soon as it finishes. Without one they train one after another here.
    ``grid.run_cases`` runs several cases side by side.
    """
    for specs in case_stages(profile, case, data, store, methods=methods):
        run_specs(specs, profile, data, store, on_run=on_run, engine=engine)


def run_specs(
    specs: list[RunSpec],
    profile: Profile,
    data: CaseData,
    store: ResultsStore,
    *,
    on_run: Callable[[RunSpec, bool], None] | None = None,
    engine=None,
) -> list[str]:
    """Train the ``specs`` not yet in ``store`` (on ``engine``, else here) and store each as it finishes.

    ``on_run(spec, skipped)`` is called for every spec: first the finished ones, in order. Returns the
    run_ids of ``specs``, in order. A run is ``branch_runs.train_run``, which writes nothing: its
    outputs and row are written here, by the driver (``branch_runs.store_run``).
    """
    run_ids = {spec: spec.run_id(profile, data) for spec in specs}
    done = [spec for spec, run_id in run_ids.items() if run_id in store]
    if on_run is not None:
        for spec in done:  # in protocol order
            on_run(spec, True)
    missing = [spec for spec in specs if spec not in done]
    finished = (
        engine.run(train_run, missing, profile, data)
        if engine is not None
        else ((spec, train_run(spec, profile, data)) for spec in missing)
    )
    for spec, result in finished:
        store_run(store, run_ids[spec], result)
        if on_run is not None:
            on_run(spec, False)
    return list(run_ids.values())


def planned_runs(profile: Profile, methods: tuple[str, ...] = METHODS) -> int:
    """How many runs (result rows) the protocol has per case, for progress bars."""
    searches = len(profile.optimizers) * len(profile.learning_rates) + len(profile.teachers) * len(
        profile.pacings
    )
    repetitions = sum(profile.repetitions_of(method) for method in methods)
    # Table IV's teacher and every score: one fewer when the search chose one of the scores.
    per_condition = sum(1 + len(profile.scores) if m in ("curriculum", "anti") else 1 for m in methods)
    conditions = len(profile.conditions) or (1 if profile.scores else 0)
    return searches + repetitions + conditions * profile.repetitions * per_condition


def stale_rows(results: pd.DataFrame) -> pd.Series:
    """Which rows of a results frame older training code wrote (a ``training_version`` other than today's).

    Their run_ids can never match a run of today's code, so they are never reused.
    """
    if "training_version" not in results:
        return pd.Series(True, index=results.index)
    return results["training_version"].fillna(-1).astype(int) != TRAINING_VERSION
