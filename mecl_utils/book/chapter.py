"""The chapters' surface: everything a chapter of the book imports from ``mecl_utils``, in one place.

Every chapter in ``notebooks/`` (and every exercise of ``book/teaching.md``) imports from this module only,
so a chapter reads like a short example (set up, data, model, train, evaluate) and never names the
package's inner layout. It holds two things:

- the names the chapters use, imported from their homes: the pacing functions and sorting orders of the
  curriculum (Sec. III-A/B, Table III), the networks and branch placements (Tables I and II), the profiles and
  the protocol's cases and stages (Sec. IV), the multi-exit evaluation (accuracy-cost curves, latency) and the
  report's tables, figures and readings (the evidence tables and the paper's Table IV re-read among them), and
  for exercises that train a branch by hand, the classifier-wise training step (Sec. III-C);
- a few functions written for the chapters that keep bookkeeping off the page: ``setup`` (settings, data
  folder, quiet TensorFlow), ``results_store``, ``grid_results``, ``train_case``, ``distilled_results``,
  ``network_strategy_rows``, and ``networks_table`` with ``paper_column`` (the trained networks beside the
  paper's Table I, the network's name carried as data).

It is kept small and stable on purpose: a chapter needing something new adds its name here, and a function
moving inside the package changes one line here instead of every chapter.
"""

import logging
import os
from dataclasses import dataclass

import pandas as pd

from mecl_utils import statistics
from mecl_utils.curriculum import pacing
from mecl_utils.curriculum.difficulty import SCORES
from mecl_utils.curriculum.pacing import TABLE_III, Pacing, first_batch_reaching, preset
from mecl_utils.curriculum.sampler import CurriculumSampler, sampler_for_method
from mecl_utils.curriculum.sorting import METHODS, cross_entropy, order, tie_fraction
from mecl_utils.exits import accuracy_cost, multi_exit, policies
from mecl_utils.exits.latency import staged_latency
from mecl_utils.networks.backbones import NETWORKS
from mecl_utils.networks.branches import INPUT_PLACEMENTS, PLACEMENTS, TABLE_II, branch_layer, build_branch
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol import trained_networks
from mecl_utils.protocol.conditions import parse_condition
from mecl_utils.protocol.features import extract_features
from mecl_utils.protocol.profiles import PROFILES, Profile, get_profile
from mecl_utils.protocol.results import ResultsStore, default_results_path
from mecl_utils.protocol.runs import Case, CaseData, cases
from mecl_utils.protocol.stages import case_stages, planned_runs, run_case
from mecl_utils.protocol.trained_networks import trained_backbone
from mecl_utils.report import (
    cells,
    condition_tables,
    distillation_tables,
    evidence_tables,
    figure_data,
    figures,
    open_questions,
    paper_evidence,
    provenance,
    readings,
    strategy_comparisons,
    strategy_tables,
)
from mecl_utils.report.table_iv import closest_paper_rows, paper_table_iv, style_table_iv, table_iv
from mecl_utils.run.case_networks import case_networks, load_splits
from mecl_utils.run.engine import Engine
from mecl_utils.run.grid import run_grid
from mecl_utils.run.prepare import prepare_case
from mecl_utils.seeds import seed_sequence
from mecl_utils.strategies import distilled_exits, network_runs
from mecl_utils.training.classifier_wise import BranchRun, train_branch
from mecl_utils.training.distillation import Distillation

__all__ = [  # what the chapters import, in ruff's order
    "INPUT_PLACEMENTS",
    "METHODS",
    "NETWORKS",
    "PLACEMENTS",
    "PROFILES",
    "SCORES",
    "TABLE_II",
    "TABLE_III",
    "BranchRun",
    "Case",
    "CaseRuns",
    "CurriculumSampler",
    "Distillation",
    "accuracy_cost",
    "branch_layer",
    "build_branch",
    "case_networks",
    "cases",
    "cells",
    "closest_paper_rows",
    "condition_results",
    "condition_settings",
    "condition_tables",
    "cross_entropy",
    "distillation_tables",
    "distilled_results",
    "evidence_tables",
    "extract_features",
    "figure_data",
    "figures",
    "first_batch_reaching",
    "get_profile",
    "grid_results",
    "load_splits",
    "multi_exit",
    "network_runs",
    "network_strategy_rows",
    "networks_table",
    "open_questions",
    "order",
    "pacing",
    "paper_column",
    "paper_evidence",
    "paper_table_iv",
    "planned_runs",
    "policies",
    "prepare_case",
    "preset",
    "provenance",
    "readings",
    "results_store",
    "run_case",
    "sampler_for_method",
    "score_names",
    "seed_sequence",
    "setup",
    "staged_latency",
    "statistics",
    "strategy_comparisons",
    "strategy_tables",
    "style_table_iv",
    "table_iv",
    "tie_fraction",
    "train_branch",
    "train_case",
    "trained_backbone",
]


def setup(profile: str, data_dir: str = "") -> tuple[Profile, str | None]:
    """The settings of ``profile`` and the data folder to read (None for an empty ``data_dir``: then
    ``$MECL_DATA_DIR``, then the Keras cache); TensorFlow's retracing notices, not meant for readers, are
    silenced."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return get_profile(profile), data_dir or None


def results_store(settings: Profile, path: str | os.PathLike | None = None) -> ResultsStore:
    """The results file at ``path``; without one, the profile's own, the one ``python -m mecl_utils run``
    fills too."""
    return ResultsStore(default_results_path(settings.name) if path is None else path)


def _rows(store: ResultsStore, run_ids: list[str]) -> pd.DataFrame:
    """The stored rows of ``run_ids``, in that order."""
    return store.frame().set_index("run_id").loc[run_ids].reset_index()


def grid_results(
    settings: Profile, store: ResultsStore, data_dir: str | os.PathLike | None
) -> tuple[pd.DataFrame, set[str]]:
    """The rows of every run of the profile's grid (finished runs read back from ``store``, missing ones
    trained), and the data sources the cases read."""
    run_ids, sources = run_grid(settings, store, data_dir=data_dir)
    return _rows(store, run_ids), sources


def score_names(scores: str) -> tuple[str, ...]:
    """The difficulty scores a chapter parameter names, ","-separated ("": none), each of ``SCORES`` once."""
    names = tuple(dict.fromkeys(name.strip() for name in scores.split(",") if name.strip()))
    unknown = sorted(set(names) - set(SCORES))
    if unknown:
        raise ValueError(f"unknown difficulty score(s) {unknown}; valid: {', '.join(SCORES)}, or '' for none")
    return names


def condition_settings(settings: Profile, conditions: str, scores: str, repetitions: int = 0) -> Profile:
    """``settings`` with the chapter parameters of "When, and by which difficulty?": ``conditions``
    (";"-separated, as ``conditions.parse_condition`` reads them), ``scores`` (","-separated names of
    ``SCORES``, compared with Table IV's teacher, never searched) and ``repetitions`` (0: the profile's)."""
    names = score_names(scores)
    if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 0:
        raise ValueError(f"repetitions must be 0 (the profile's) or a positive count, got {repetitions!r}")
    return settings.replace(
        conditions=tuple(parse_condition(text) for text in conditions.split(";")),
        scores=names,
        **({"repetitions": repetitions} if repetitions else {}),
    )


def condition_results(
    settings: Profile, store: ResultsStore, data_dir: str | os.PathLike | None, selected: list[Case]
) -> pd.DataFrame:
    """Every stage of the ``selected`` cases, the conditions stage included (``stages.condition_specs``),
    trained where ``store`` lacks it; the conditions stage's runs as ``condition_tables.condition_rows``."""
    runs = []
    with Engine() as engine:
        run_grid(settings, store, data_dir=data_dir, only=selected, engine=engine)
        for case in selected:
            data = prepare_case(settings, case, data_dir=data_dir, engine=engine)
            *_, conditioned = case_stages(settings, case, data, store)
            runs += [(spec, spec.run_id(settings, data)) for spec in conditioned]
    return condition_tables.condition_rows(runs, store.frame())


@dataclass(frozen=True)
class CaseRuns:
    """The runs of one case: their stored rows, and how many trained now or were found in the results file."""

    rows: pd.DataFrame
    trained: int
    found: int


def train_case(settings: Profile, case: Case, case_data: CaseData, store: ResultsStore) -> CaseRuns:
    """Every stage of ``case`` (searches, then repetitions); the runs of a stage train in parallel, one Ray
    task per CPU core, and runs already in ``store`` are read back."""
    trained, found, run_ids = [], [], []

    def record(spec, skipped):
        (found if skipped else trained).append(spec)
        run_ids.append(spec.run_id(settings, case_data))

    with Engine() as engine:
        run_case(settings, case, case_data, store, on_run=record, engine=engine)
    return CaseRuns(_rows(store, run_ids), len(trained), len(found))


def distilled_results(
    settings: Profile, store: ResultsStore, distillation: Distillation, data_dir: str | os.PathLike | None
) -> tuple[pd.DataFrame, set[str]]:
    """The rows of the profile's grid and of the distilled branches of every case (Sec. V), and the data
    sources the cases read; one engine trains whatever ``store`` lacks."""
    distilled_ids = []
    with Engine() as engine:
        run_ids, sources = run_grid(settings, store, data_dir=data_dir, engine=engine)
        for case in cases(settings):
            data = prepare_case(settings, case, data_dir=data_dir, engine=engine)
            distilled_ids += distilled_exits.run_distillation(
                settings, case, data, store, distillation, data_dir=data_dir, engine=engine
            )
    return _rows(store, run_ids + distilled_ids), sources


def network_strategy_rows(
    settings: Profile,
    networks: Profile,
    store: ResultsStore,
    *,
    teacher: str,
    pacing: Pacing,
    data_dir: str | os.PathLike | None,
) -> pd.DataFrame:
    """The rows of the whole-network strategies (Sec. V) in the setting ``networks``, on the first backbone
    and data set of ``settings``; runs already in ``store`` are read back."""
    with Engine() as engine:
        network_ids = network_runs.run_network_strategies(
            networks,
            settings.backbones[0],
            settings.datasets[0],
            store,
            teacher=teacher,
            pacing=pacing,
            data_dir=data_dir,
            engine=engine,
        )
    return _rows(store, network_ids)


def paper_column(dataset_name: str) -> str:
    """The column of the paper's Table I to compare ``dataset_name`` with: it reports CIFAR-10 and CIFAR-100,
    and the offline digits are compared with CIFAR-10."""
    return "cifar100" if dataset_name.startswith("cifar100") else "cifar10"


def networks_table(settings: Profile, backbone, dataset: Dataset, splits: Splits) -> pd.DataFrame:
    """The trained backbone and every teacher of the profile other than ``self`` (trained if not cached):
    parameters, test accuracy, and the paper's Table I accuracy of the same network (NaN if not one of the
    paper's networks)."""
    backbone_name = settings.backbones[0]
    networks = [("backbone", backbone_name, backbone)]
    for teacher in settings.teachers:
        if teacher != "self" and teacher not in SCORES:  # "self" is the backbone itself; a score no network
            model = trained_networks.trained_teacher(
                settings, teacher, backbone_name, dataset, splits, seed=settings.seed
            )
            networks.append(("teacher", teacher, model))
    column = paper_column(dataset.name)
    return pd.DataFrame(
        [
            {
                "role": f"{role} ({name})",
                "parameters": model.count_params(),
                "test accuracy (%)": 100 * trained_networks.evaluate(model, splits.test),
                f"paper, Table I, {column} (%)": provenance.paper_accuracy(name, column),
            }
            for role, name, model in networks
        ]
    ).set_index("role")
