"""What a branch run is and what identifies it (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. III).

A *case* is a (backbone, dataset, branch number) of a profile; its ``CaseData`` is what every run of it
reads. A run (``RunSpec``) is one (case, method, optimizer, learning rate, teacher, pacing, repetition) of a
stage of the protocol (``stages``).

The searches have seeds of their own, disjoint from every repetition's (``seeds.run_seeds``): a search run
that was lucky on the hyper-parameter split is never reported, so the method with more candidates (the
curriculum search has teachers × pacings of them) gains nothing from the selection itself.

Every run is a row of the results store, identified by a ``run_id`` hashed from exactly what determines its
result (``run_identity``): the data and backbone, the branch layer, the teacher's scores, the pacing
function's parameters, the sampler's options, the seeds, the training schedule and the training code's
version; not the profile's name, grids or number of repetitions, so adding a repetition trains only the new
runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import keras
import numpy as np

from mecl_utils.curriculum.pacing import parameters, preset
from mecl_utils.protocol.conditions import PAPER_CONDITION, Condition
from mecl_utils.protocol.profiles import Profile
from mecl_utils.seeds import RunSeeds, run_seeds
from mecl_utils.training.classifier_wise import TRAINING_VERSION
from mecl_utils.training.distillation import FINAL_LOGITS_VERSION, Distillation

__all__ = ["OUTPUT_SPLITS", "Case", "CaseData", "RunSpec", "cases", "run_identity"]

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
    # (feature_modes): "memory", a float32 array; "shards", float16 ``ShardedFeatures`` on disk;
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
    # What each ordering that reads labels (a teacher, a score of difficulty.LABEL_SCORES) computed on
    # "train", a row per sample (difficulty_scores.label_outputs): a noisy-label condition rescores from it.
    label_outputs: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class RunSpec:
    """One run = (case, method, optimizer, learning rate, teacher, pacing, repetition), plus its stage."""

    stage: str  # "vanilla_search", "curriculum_search", "repetition" (or "distillation": network_runs)
    case: Case
    method: str
    optimizer: str
    learning_rate: float
    teacher: str | None
    pacing: str | None
    repetition: int
    eval_split: str  # "hparam" for the searches, "test" for the repetitions
    distillation: Distillation | None = None  # a branch that also learns from the final exit
    condition: Condition = PAPER_CONDITION  # its training budget, label noise and data (conditions)

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
        **spec.condition.identity(),  # nothing for the paper's condition: older runs keep their ids
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
