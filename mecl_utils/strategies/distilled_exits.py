"""Distilled exits (the paper's Sec. V question): does curriculum learning help a branch that also learns
from the final exit?

Bakhtiarnia, Zhang & Iosifidis (2021) close by asking whether curriculum learning still helps when the exits
are trained otherwise than classifier-wise. One answer keeps classifier-wise training and changes the loss:
per case, a branch that also learns from the final exit (``training.distillation``), with vanilla and with
curriculum training and paired repetitions, its rows (stage ``distillation``) in the same resumable results
store as Table IV's (``distillation_specs``, ``run_distillation``).

It reuses the case's Table IV choices (optimizer, learning rate, teacher, pacing): no search of its own, so
it asks whether curriculum *as chosen for plain branches* still helps. Its repetitions have the Table IV
repetitions' seeds, so every distilled run pairs with the plain runs of its repetition (same initial weights,
same batches). ``report.strategy_comparisons.distillation_table`` reads the rows.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import Case, CaseData, RunSpec
from mecl_utils.protocol.stages import case_stages, run_specs
from mecl_utils.run.case_networks import case_networks, load_splits
from mecl_utils.run.engine import Engine
from mecl_utils.strategies.network_runs import STRATEGY_METHODS
from mecl_utils.training.distillation import Distillation, final_exit_logits

__all__ = ["distillation_specs", "run_distillation", "with_final_logits"]


def distillation_specs(
    profile: Profile, case: Case, data: CaseData, store: ResultsStore, distillation: Distillation
) -> list[RunSpec]:
    """The distilled runs of ``case``: each of the profile's ``repetitions`` × (vanilla, curriculum), with
    Table IV's choices.

    The choices (optimizer, learning rate, teacher, pacing) are those the case's own searches made today
    (``stages.case_stages``): read from the rows of exactly the search runs of this profile, code and
    data, by run_id, never from another row of the store (an older training version, another grid or
    profile). Both searches must be in ``store``: a ValueError says so.
    """
    stages = case_stages(profile, case, data, store, methods=STRATEGY_METHODS)
    for searches in itertools.islice(stages, 2):  # the vanilla search, then the curriculum search
        missing = sum(spec.run_id(profile, data) not in store for spec in searches)
        if missing:
            raise ValueError(
                f"{missing} of the {len(searches)} runs of {case.label}'s {searches[0].stage} of today's "
                f"grid are not in {store.path}: run the protocol first (python -m mecl_utils run), whose "
                "choices the distilled runs reuse"
            )
    # The profile's repetitions of every method, not the main comparison's extra ones (repetitions_of).
    return [
        dataclasses.replace(spec, stage="distillation", distillation=distillation)
        for spec in next(stages)
        if spec.repetition < profile.repetitions
    ]


def with_final_logits(
    profile: Profile, case: Case, data: CaseData, *, data_dir: str | None = None
) -> CaseData:
    """``data`` with its backbone's final-exit logits on train and val (cached), what distilled runs read.

    ``data`` comes from ``prepare.prepare_case``, which had ``case_networks`` train what the cache lacked: the
    backbone is read back here (in this process, ``workers=0``, should it be missing after all)."""
    dataset, splits = load_splits(profile, case.dataset, data_dir)
    backbone = case_networks(profile, case.backbone, dataset, splits, workers=0).backbone
    logits = final_exit_logits(
        backbone, data.identity["backbone"], {"train": splits.train, "val": splits.val}
    )
    return dataclasses.replace(data, final_logits=logits)


def run_distillation(
    profile: Profile,
    case: Case,
    data: CaseData,
    store: ResultsStore,
    distillation: Distillation,
    *,
    data_dir: str | None = None,
    engine: Engine | None = None,
    on_run: Callable[[RunSpec, bool], None] | None = None,
) -> list[str]:
    """The distilled runs of ``case`` (``distillation_specs``) trained and stored; finished ones skipped.

    ``data`` is the case's ``CaseData`` from ``prepare.prepare_case`` (with the same ``data_dir``); the
    final exit's logits are added here.
    """
    if data.final_logits is None:
        data = with_final_logits(profile, case, data, data_dir=data_dir)
    specs = distillation_specs(profile, case, data, store, distillation)
    return run_specs(specs, profile, data, store, on_run=on_run, engine=engine)
