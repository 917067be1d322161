"""The paper's experimental protocol (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. III-IV), resumable.

For every case (backbone, dataset, branch number):

1. *Vanilla search*: every optimizer × learning rate of the profile trains a vanilla branch; the best
   accuracy on the hyper-parameter split picks the optimizer and learning rate.
2. *Curriculum search*: with that optimizer and learning rate, every teacher × pacing function (Table III)
   trains a curriculum branch; the best on the hyper-parameter split picks teacher and pacing. Anti- and
   random curriculum reuse these choices, as the paper does.
3. *Repetitions*: each repetition trains the four methods from one shared initialisation and reports their
   accuracy on the test split. Table IV (``results.table_iv``) summarises them. The searches use the seeds
   of repetition 0, so there vanilla and curriculum report the chosen search runs' training (its test
   accuracy, recorded for exactly this) instead of training the same branch twice.

Every run is a row of the results store, identified by a ``run_id`` hashed from everything that determines
it; finished runs are skipped, so a killed grid resumes where it stopped. The test split is never used for a
choice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import keras
import numpy as np

from . import __version__
from .curriculum import METHODS
from .pacing import preset
from .profiles import Profile
from .results import ResultsStore
from .sampler import sampler_for_method
from .training import TRAINING_VERSION, BranchRun, train_branch
from .workers import RunPool

__all__ = ["Case", "CaseData", "RunSpec", "cases", "run_case"]


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

    features: dict[str, np.ndarray]  # split name ("train", "val", "hparam", "test") -> feature array
    labels: dict[str, np.ndarray]
    teacher_losses: dict[str, np.ndarray]  # teacher name -> per-sample loss on the train split
    num_classes: int
    layer: str
    provenance: dict = field(default_factory=dict)  # what determines the data: part of every run_id
    info: dict = field(default_factory=dict)  # data source, timings, backbone accuracy: copied into rows only


@dataclass(frozen=True)
class RunSpec:
    """One run = (case, method, optimizer, learning rate, teacher, pacing, repetition), plus its stage."""

    stage: str  # "vanilla_search", "curriculum_search" or "repetition"
    case: Case
    method: str
    optimizer: str
    learning_rate: float
    teacher: str | None
    pacing: str | None
    repetition: int
    eval_split: str  # "hparam" for the searches, "test" for the repetitions

    def run_id(self, profile: Profile, provenance: dict) -> str:
        payload = {
            "spec": asdict(self),
            "profile": asdict(profile),
            "provenance": provenance,
            "training_version": TRAINING_VERSION,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cases(profile: Profile) -> list[Case]:
    """Every (backbone, dataset, branch) of the profile, in the paper's order."""
    return [
        Case(backbone, dataset, branch)
        for backbone in profile.backbones
        for dataset in profile.datasets
        for branch in profile.branch_numbers
    ]


def _seed(profile: Profile, case: Case, repetition: int, purpose: str) -> int:
    """A seed shared by every method of one repetition of one case (so their initial weights match)."""
    text = f"{profile.seed}/{case.label}/{repetition}/{purpose}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def execute(spec: RunSpec, profile: Profile, data: CaseData, *, verbose: int = 0) -> dict:
    """Train and evaluate one run; return its result row (without storing it).

    A search run is also evaluated on the test split (``test_accuracy``), never to choose anything: the
    chosen search runs train exactly what repetition 0 of vanilla and curriculum would (same seeds, data
    and settings), so ``run_case`` reports that training's test accuracy for those two repetition runs.
    """
    init_seed = _seed(profile, spec.case, spec.repetition, "init")
    losses = data.teacher_losses[spec.teacher] if spec.teacher else np.zeros(len(data.labels["train"]))
    sampler = sampler_for_method(
        spec.method,
        losses,
        profile.branch_batch_size,
        preset(spec.pacing) if spec.pacing else None,
        seed=_seed(profile, spec.case, spec.repetition, "sampling"),
    )
    run = BranchRun(
        optimizer=spec.optimizer,
        learning_rate=spec.learning_rate,
        epochs=profile.branch_epochs,
        plateau_patience=profile.plateau_patience,
        plateau_factor=profile.plateau_factor,
        init_seed=init_seed,
        train_seed=_seed(profile, spec.case, spec.repetition, "dropout"),
    )
    result = train_branch(
        run,
        sampler,
        _split(data, "train"),
        _split(data, "val"),
        _split(data, spec.eval_split),
        num_classes=data.num_classes,
        also_evaluate=None if spec.eval_split == "test" else {"test": _split(data, "test")},
        verbose=verbose,
    )
    return {
        **_spec_fields(spec),
        "layer": data.layer,
        "accuracy": result.accuracy,
        "test_accuracy": result.also_accuracy.get("test", result.accuracy),
        "same_training_as": "",  # the run_id whose training this row reports, when it trained nothing itself
        "best_val_accuracy": max(result.val_accuracy),
        "val_accuracy": json.dumps([round(v, 5) for v in result.val_accuracy]),
        "train_loss": json.dumps([round(v, 5) for v in result.train_loss]),
        "seconds": round(result.seconds, 3),
        "init_seed": init_seed,
        "profile": profile.name,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **data.provenance,
        **data.info,
        **_versions(),
    }


def _spec_fields(spec: RunSpec) -> dict:
    return {
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


def _reported_from(spec: RunSpec, twin_id: str, twin: dict) -> dict:
    """``spec``'s row from a stored search run that trained exactly the same (its ``test_accuracy``)."""
    return {
        **twin,
        **_spec_fields(spec),
        "accuracy": float(twin["test_accuracy"]),
        "seconds": 0.0,  # nothing was trained for this row
        "same_training_as": twin_id,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
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


def run_case(
    profile: Profile,
    case: Case,
    data: CaseData,
    store: ResultsStore,
    *,
    methods: tuple[str, ...] = METHODS,
    on_run: Callable[[RunSpec, bool], None] | None = None,
    pool: RunPool | None = None,
) -> None:
    """The three stages for one case; finished runs (by run_id) are skipped. ``on_run(spec, skipped)``.

    The runs of a stage are independent: ``pool`` (a ``workers.RunPool``) trains them in parallel processes
    and each is stored as soon as it finishes. Without a pool they train one after another in this process.
    Repetition 0 of vanilla and of curriculum would train exactly what the chosen search runs trained, so
    their rows report those runs' test accuracy (``same_training_as``) instead of training again.
    """
    pool = pool if pool is not None else RunPool(workers=0)

    def ensure(specs: list[RunSpec], twins: dict[RunSpec, str] | None = None) -> list[str]:
        run_ids = {spec: spec.run_id(profile, data.provenance) for spec in specs}
        done = [spec for spec, run_id in run_ids.items() if run_id in store]
        if on_run is not None:
            for spec in done:  # in protocol order
                on_run(spec, True)
        twins = {spec: twin_id for spec, twin_id in (twins or {}).items() if spec not in done}
        stored = store.frame().set_index("run_id") if twins else None
        for spec, twin_id in twins.items():
            store.append(
                {"run_id": run_ids[spec], **_reported_from(spec, twin_id, stored.loc[twin_id].to_dict())}
            )
            if on_run is not None:
                on_run(spec, False)
        for spec, row in pool.run(
            [spec for spec in specs if spec not in done and spec not in twins], profile, data
        ):
            store.append({"run_id": run_ids[spec], **row})
            if on_run is not None:
                on_run(spec, False)
        return list(run_ids.values())

    vanilla = ensure(
        [
            RunSpec("vanilla_search", case, "vanilla", opt, lr, None, None, 0, "hparam")
            for opt in profile.optimizers
            for lr in profile.learning_rates
        ]
    )
    chosen = _best(store, vanilla, ("optimizer", "learning_rate"))
    optimizer, learning_rate = str(chosen["optimizer"]), float(chosen["learning_rate"])
    chosen_vanilla = chosen["run_id"]
    curriculum = ensure(
        [
            RunSpec(
                "curriculum_search",
                case,
                "curriculum",
                optimizer,
                learning_rate,
                teacher,
                pacing,
                0,
                "hparam",
            )
            for teacher in profile.teachers
            for pacing in profile.pacings
        ]
    )
    chosen = _best(store, curriculum, ("teacher", "pacing"))
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
        for repetition in range(profile.repetitions)
        for method in methods
    ]
    twins = {"vanilla": chosen_vanilla, "curriculum": chosen["run_id"]}
    ensure(
        repetitions,
        {spec: twins[spec.method] for spec in repetitions if spec.repetition == 0 and spec.method in twins},
    )


def planned_runs(profile: Profile, methods: tuple[str, ...] = METHODS) -> int:
    """How many runs (result rows) the protocol has per case, for progress bars. Two of them, repetition 0
    of vanilla and of curriculum, report a search run's training instead of training again (``run_case``)."""
    searches = len(profile.optimizers) * len(profile.learning_rates) + len(profile.teachers) * len(
        profile.pacings
    )
    return searches + profile.repetitions * len(methods)
