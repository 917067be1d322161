"""The paper's experimental protocol (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. III-IV), resumable.

For every case (backbone, dataset, branch number):

1. *Vanilla search*: every optimizer × learning rate of the profile trains a vanilla branch; the best
   accuracy on the hyper-parameter split picks the optimizer and learning rate.
2. *Curriculum search*: with that optimizer and learning rate, every teacher × pacing function (Table III)
   trains a curriculum branch; the best on the hyper-parameter split picks teacher and pacing. Anti- and
   random curriculum reuse these choices, as the paper does.
3. *Repetitions*: each repetition trains all four methods afresh from one shared initialisation and
   reports their accuracy on the test split. Table IV (``table_iv.table_iv``) summarises them.

The searches have seeds of their own, disjoint from every repetition's (``seeds.run_seeds``): a search run
that was lucky on the hyper-parameter split is never reported, so the method with more candidates (the
curriculum search has teachers × pacings of them) gains nothing from the selection itself.

A repetition run also keeps its branch's softmax outputs on the validation, hyper-parameter and test
splits in the cache (``branch_outputs``), so exit policies can be studied without training again; the
searches do not (at the paper's scale that would be gigabytes nobody reads).

Every run is a row of the results store, identified by a ``run_id`` hashed from exactly what determines its
result (``run_identity``): the data and backbone, the branch layer, the teacher's scores, the pacing
function's parameters, the sampler's options, the seeds, the training schedule and the training code's
version; not the profile's name, grids or number of repetitions, so adding a repetition trains only the new
runs. Finished runs are skipped, so a killed grid resumes where it stopped. The test split is never used for
a choice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
import pandas as pd

from mecl_utils import __version__
from mecl_utils.cache import cache_key, cache_path, cached_arrays
from mecl_utils.curriculum.pacing import parameters, preset
from mecl_utils.curriculum.sampler import sampler_for_method
from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.seeds import RunSeeds, run_seeds
from mecl_utils.training.classifier_wise import TRAINING_VERSION, BranchRun, train_branch
from mecl_utils.training.distillation import FINAL_LOGITS_VERSION, Distillation, pack_targets

__all__ = [
    "OUTPUT_SPLITS",
    "Case",
    "CaseData",
    "RunSpec",
    "branch_outputs",
    "case_stages",
    "cases",
    "run_case",
    "run_identity",
    "run_specs",
    "stale_rows",
]

OUTPUT_SPLITS = ("val", "hparam", "test")  # where a repetition run's branch outputs are kept
SEARCH_STAGES = ("vanilla_search", "curriculum_search")


@dataclass(frozen=True)
class Case:
    backbone: str
    dataset: str
    branch: int

    @property
    def label(self) -> str:
        return f"{self.backbone}/{self.dataset}/branch {self.branch}"


@dataclass(frozen=True, eq=False)
class CaseData:
    """What a case's runs read: branch-layer features and labels per split, and teacher losses on train."""

    # split name ("train", "val", "hparam", "test") -> the branch's inputs, by ``feature_mode``
    # (feature_modes): "memory", a float32 array; "shards", float16 ``feature_shards.ShardedFeatures``;
    # "backbone", the images, which ``cut_backbone`` turns into features inside the training graph.
    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    teacher_losses: dict[str, np.ndarray]  # teacher name -> per-sample loss on the train split
    num_classes: int
    layer: str
    provenance: dict = field(default_factory=dict)  # data fingerprint and backbone key: copied into rows
    # What determines the data a run reads, for run_identity: "backbone" (its cache key), "features"
    # (version), "split_index" (split name -> index fingerprint), "teachers" (name -> losses cache key).
    identity: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # data source, timings, backbone accuracy: copied into rows only
    feature_mode: str = "memory"
    cut_backbone: keras.Model | None = None  # the backbone up to the branch layer, in "backbone" mode only
    # The final exit's logits on "train" and "val" (distillation.final_exit_logits), for distilled runs only.
    final_logits: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run = (case, method, optimizer, learning rate, teacher, pacing, repetition), plus its stage."""

    stage: str  # "vanilla_search", "curriculum_search", "repetition" (or "distillation": distilled_exits)
    case: Case
    method: str
    optimizer: str
    learning_rate: float
    teacher: str | None
    pacing: str | None
    repetition: int
    eval_split: str  # "hparam" for the searches, "test" for the repetitions
    distillation: Distillation | None = None  # a branch that also learns from the final exit

    @property
    def seed_group(self) -> str:
        """The searches draw their seeds apart from the reported repetitions (``seeds.run_seeds``)."""
        return "search" if self.stage in SEARCH_STAGES else "repetition"

    def seeds(self, profile: Profile) -> RunSeeds:
        return run_seeds(profile.seed, self.case.label, self.seed_group, self.repetition)

    def run_id(self, profile: Profile, data: CaseData) -> str:
        """The hash of ``run_identity``: equal for two runs exactly when they train the same."""
        payload = json.dumps(run_identity(self, profile, data), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def run_identity(spec: RunSpec, profile: Profile, data: CaseData) -> dict:
    """Exactly the values that determine a run's result, and nothing else.

    Left out on purpose: the stage and the profile's name (a run trains the same whatever it is called),
    the grids and the number of repetitions (other runs), and a vanilla run's teacher and pacing (it has
    none). The teacher enters by its scores' cache key, which hashes the teacher's network, recipe, seed and
    data; a pacing function by its parameters, so redefining a preset under its old name is a new run.
    """
    seeds = spec.seeds(profile)
    vanilla = spec.method == "vanilla"
    # A reported run's outputs on every OUTPUT_SPLITS split are kept under its run_id (keep_outputs).
    splits = ("train", "val", spec.eval_split, *(OUTPUT_SPLITS if spec.seed_group == "repetition" else ()))
    # Only distilled runs carry the key, so every other run keeps the identity it had before distillation.
    distilled = (
        {} if spec.distillation is None else {"distillation": _distillation_identity(spec.distillation)}
    )
    return {
        **distilled,
        "training_version": TRAINING_VERSION,
        "data": {
            "backbone": data.identity["backbone"],
            "features": data.identity["features"],
            "layer": data.layer,
            "split_index": {name: data.identity["split_index"][name] for name in splits},
        },
        "eval_split": spec.eval_split,
        "method": spec.method,
        "teacher": data.identity["teachers"][spec.teacher] if spec.method in ("curriculum", "anti") else None,
        "pacing": None if vanilla else parameters(preset(spec.pacing)),
        "sampler": {
            "batch_size": profile.branch_batch_size,
            "class_balance": profile.class_balance,  # regroups the order every method's batches draw from
            "vanilla_sampling": profile.vanilla_sampling if vanilla else None,
        },
        "optimizer": spec.optimizer,
        "learning_rate": spec.learning_rate,
        "schedule": {
            "epochs": profile.branch_epochs,
            "plateau_patience": profile.plateau_patience,
            "plateau_factor": profile.plateau_factor,
        },
        "seeds": {
            "init": seeds.init,
            "dropout": seeds.dropout,
            "sampling": seeds.sampling,
            "order": None if vanilla else seeds.order,
        },
    }


def _distillation_identity(distillation: Distillation) -> dict:
    """The loss settings; the backbone and split indices already there fix the final exit's logits."""
    return {**asdict(distillation), "final_logits_version": FINAL_LOGITS_VERSION}


def cases(profile: Profile) -> list[Case]:
    """Every (backbone, dataset, branch) of the profile, in the paper's order."""
    return [
        Case(backbone, dataset, branch)
        for backbone in profile.backbones
        for dataset in profile.datasets
        for branch in profile.branch_numbers
    ]


def execute(spec: RunSpec, profile: Profile, data: CaseData, *, verbose: int = 0) -> dict:
    """Train and evaluate one run; return its result row (without storing it), its outputs cached."""
    row, probabilities = train_run(spec, profile, data, verbose=verbose)
    keep_outputs(spec.run_id(profile, data), probabilities)
    return row


def keep_outputs(run_id: str, probabilities: dict[str, np.ndarray] | None) -> None:
    """Cache a repetition's outputs (``branch_outputs``), replacing any kept there before; a search has none.

    Outputs are written before their row is stored (``run_specs``, ``grid.run_cases``), so a run stopped in
    between leaves outputs without a row. Its run_id is then not in the store, so it trains again, and the
    retrained run writes its own outputs over the ones left behind: outputs under a stored run_id are
    always those of the run that stored the row, never a reused older copy.
    """
    if probabilities is not None:
        cache_path("branch_outputs", cache_key(_outputs_parts(run_id)), ".npz").unlink(missing_ok=True)
        cached_arrays("branch_outputs", _outputs_parts(run_id), lambda: probabilities)


def train_run(
    spec: RunSpec, profile: Profile, data: CaseData, *, verbose: int = 0
) -> tuple[dict, dict[str, np.ndarray] | None]:
    """Train and evaluate one run, writing nothing: its result row, and a repetition's outputs per split.

    What a Ray task runs: the driver stores the row and keeps the outputs, so a cluster's nodes need no
    shared folder for them.
    """
    seeds = spec.seeds(profile)
    losses = data.teacher_losses[spec.teacher] if spec.teacher else np.zeros(len(data.labels["train"]))
    sampler = sampler_for_method(
        spec.method,
        losses,
        profile.branch_batch_size,
        preset(spec.pacing) if spec.pacing else None,
        seed=seeds.sampling,
        order_seed=seeds.order,
        labels=data.labels["train"],
        balance=profile.class_balance,
        vanilla_sampling=profile.vanilla_sampling,
    )
    run = BranchRun(
        optimizer=spec.optimizer,
        learning_rate=spec.learning_rate,
        epochs=profile.branch_epochs,
        plateau_patience=profile.plateau_patience,
        plateau_factor=profile.plateau_factor,
        init_seed=seeds.init,
        dropout_seed=seeds.dropout,
    )
    train, val = _split(data, "train"), _split(data, "val")
    if spec.distillation is not None:
        if data.final_logits is None:
            raise ValueError(
                f"a distilled run of {spec.case.label} needs the final exit's logits: pass the case through "
                "distilled_exits.with_final_logits first"
            )
        train, val = (
            (x, pack_targets(y, data.final_logits[name])) for name, (x, y) in (("train", train), ("val", val))
        )
    reported = spec.seed_group == "repetition"
    result = train_branch(
        run,
        sampler,
        train,
        val,
        _split(data, spec.eval_split),
        num_classes=data.num_classes,
        frozen_backbone=data.cut_backbone,
        predict={name: data.features[name] for name in OUTPUT_SPLITS} if reported else None,
        distillation=spec.distillation,
        verbose=verbose,
    )
    row = {
        **_spec_fields(spec),
        "layer": data.layer,
        "accuracy": result.accuracy,
        "best_val_accuracy": max(result.val_accuracy),
        "val_accuracy": json.dumps([round(v, 5) for v in result.val_accuracy]),
        "train_loss": json.dumps([round(v, 5) for v in result.train_loss]),
        "seconds": round(result.seconds, 3),
        **{f"{stream}_seed": value for stream, value in asdict(seeds).items()},
        "training_version": TRAINING_VERSION,
        "profile": profile.name,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **data.provenance,
        **data.info,
        **_versions(),
    }
    return row, result.probabilities


def _outputs_parts(run_id: str) -> dict:
    return {"version": 1, "run_id": run_id}


def branch_outputs(run_id: str) -> dict[str, np.ndarray]:
    """The softmax outputs (N × classes, float32) a repetition run's branch gave on ``OUTPUT_SPLITS``.

    Rows follow the order of the case's splits (``CaseData.labels``). Raises ``KeyError`` when the cache
    does not hold them (a search run, or a cache cleared since): re-running the grid does not restore them,
    because the run is done; delete its row from the results file to train it again.
    """
    path = cache_path("branch_outputs", cache_key(_outputs_parts(run_id)), ".npz")
    if not path.is_file():
        raise KeyError(f"no branch outputs cached for run {run_id} ({path}): only repetition runs keep them")
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _spec_fields(spec: RunSpec) -> dict:
    distilled = {} if spec.distillation is None else {
        "distillation_weight": spec.distillation.weight,
        "distillation_temperature": spec.distillation.temperature,
    }  # fmt: skip
    return {
        **distilled,
        "stage": spec.stage,
        "backbone": spec.case.backbone,
        "dataset": spec.case.dataset,
        "branch": spec.case.branch,
        "method": spec.method,
        "optimizer": spec.optimizer,
        "learning_rate": spec.learning_rate,
        "teacher": spec.teacher or "",
        "pacing": spec.pacing or "",
        "repetition": spec.repetition,
        "eval_split": spec.eval_split,
    }


def _split(data: CaseData, name: str) -> tuple[np.ndarray, np.ndarray]:
    return data.features[name], data.labels[name]


def _versions() -> dict:
    return {"mecl_version": __version__, "keras_version": keras.__version__, "numpy_version": np.__version__}


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
    yield [
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
        for repetition in range(profile.repetitions)
        for method in methods
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
    run_ids of ``specs``, in order.
    """
    run_ids = {spec: spec.run_id(profile, data) for spec in specs}
    done = [spec for spec, run_id in run_ids.items() if run_id in store]
    if on_run is not None:
        for spec in done:  # in protocol order
            on_run(spec, True)
    missing = [spec for spec in specs if spec not in done]
    finished = (
        engine.run(missing, profile, data)
        if engine is not None
        else ((spec, execute(spec, profile, data)) for spec in missing)
    )
    for spec, row in finished:
        store.append({"run_id": run_ids[spec], **row})
        if on_run is not None:
            on_run(spec, False)
    return list(run_ids.values())


def planned_runs(profile: Profile, methods: tuple[str, ...] = METHODS) -> int:
    """How many runs (result rows) the protocol has per case, for progress bars."""
    searches = len(profile.optimizers) * len(profile.learning_rates) + len(profile.teachers) * len(
        profile.pacings
    )
    return searches + profile.repetitions * len(methods)


def stale_rows(results: pd.DataFrame) -> pd.Series:
    """Which rows of a results frame older training code wrote (a ``training_version`` other than today's).

    Their run_ids can never match a run of today's code, so they are never reused.
    """
    if "training_version" not in results:
        return pd.Series(True, index=results.index)
    return results["training_version"].fillna(-1).astype(int) != TRAINING_VERSION
