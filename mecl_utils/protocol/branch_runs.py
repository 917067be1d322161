"""One branch run trained and evaluated (Sec. III), and the softmax outputs a repetition run keeps.

``train_run`` is what a Ray task runs: it writes nothing, and the driver keeps the outputs and stores the
row (``store_run``), so a cluster's nodes need no shared folder for them. A repetition run keeps its
branch's softmax outputs on the validation, hyper-parameter and test splits in the cache
(``branch_outputs``), so exit policies can be studied without training again; the searches do not (at the
paper's scale that would be gigabytes nobody reads).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict

import keras
import numpy as np

from mecl_utils import __version__
from mecl_utils.cache import cache_key, cache_path, cached_arrays
from mecl_utils.curriculum.difficulty import reads_labels
from mecl_utils.curriculum.pacing import Pacing, preset
from mecl_utils.curriculum.rows import LazyRows, RowSubset
from mecl_utils.curriculum.sampler import sampler_for_method
from mecl_utils.protocol.conditions import (
    condition_epochs,
    scaled_pacing,
    train_labels,
    train_rows,
)
from mecl_utils.protocol.difficulty_scores import relabelled_scores
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import OUTPUT_SPLITS, CaseData, RunSpec
from mecl_utils.training.classifier_wise import TRAINING_VERSION, BranchRun, train_branch
from mecl_utils.training.distillation import pack_targets

__all__ = ["branch_outputs", "keep_outputs", "store_run", "train_run"]


def keep_outputs(run_id: str, probabilities: dict[str, np.ndarray] | None) -> None:
    """Cache a repetition's outputs (``branch_outputs``), replacing any kept there before; a search has none.

    Outputs are written before their row is stored (``store_run``), so a run stopped in between leaves outputs
    without a row. Its run_id is then not in the store, so it trains again, and the retrained run writes its
    own outputs over the ones left behind: outputs under a stored run_id are always those of the run that
    stored the row, never a reused older copy.
    """
    if probabilities is not None:
        cache_path("branch_outputs", cache_key(_outputs_parts(run_id)), ".npz").unlink(missing_ok=True)
        cached_arrays("branch_outputs", _outputs_parts(run_id), lambda: probabilities)


def store_run(store: ResultsStore, run_id: str, result: tuple[dict, dict[str, np.ndarray] | None]) -> None:
    """A finished ``train_run``'s ``result`` (row, outputs) on the driver: outputs kept, then the row."""
    row, probabilities = result
    keep_outputs(run_id, probabilities)
    store.append({"run_id": run_id, **row})


def train_run(
    spec: RunSpec, profile: Profile, data: CaseData, *, verbose: int = 0
) -> tuple[dict, dict[str, np.ndarray] | None]:
    """Train and evaluate one run, writing nothing: its result row, and a repetition's outputs per split.

    What a Ray task runs: the driver stores the row and keeps the outputs, so a cluster's nodes need no
    shared folder for them.
    """
    seeds = spec.seeds(profile)
    train, losses, epochs, pacing = _conditioned(spec, profile, data)
    sampler = sampler_for_method(
        spec.method,
        losses,
        profile.branch_batch_size,
        pacing,
        seed=seeds.sampling,
        order_seed=seeds.order,
        labels=train[1],
        balance=profile.class_balance,
        vanilla_sampling=profile.vanilla_sampling,
    )
    run = BranchRun(
        optimizer=spec.optimizer,
        learning_rate=spec.learning_rate,
        epochs=epochs,
        plateau_patience=profile.plateau_patience,
        plateau_factor=profile.plateau_factor,
        init_seed=seeds.init,
        dropout_seed=seeds.dropout,
    )
    val = _split(data, "val")
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
        **_condition_fields(spec),
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


def _conditioned(
    spec: RunSpec, profile: Profile, data: CaseData
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, int, Pacing | None]:
    """What ``spec`` trains on under its condition (``conditions``): (inputs, labels) of the training split,
    the teacher's scores of those samples, the epochs and the pacing function.

    Under the paper's condition: the whole split, the stored losses, the profile's epochs and the preset.
    """
    condition, labels = spec.condition, data.labels["train"]
    pacing = preset(spec.pacing) if spec.pacing else None
    if condition.is_paper:
        losses = data.teacher_losses[spec.teacher] if spec.teacher else np.zeros(len(labels))
        return _split(data, "train"), losses, profile.branch_epochs, pacing
    if spec.distillation is not None:
        raise ValueError(f"conditions apply to plain branches; {spec.case.label} asks for a distilled one")
    rows = train_rows(labels, condition, seed=profile.seed, dataset=spec.case.dataset)
    noisy = train_labels(
        labels[rows], condition, data.num_classes, seed=profile.seed, dataset=spec.case.dataset
    )
    if not spec.teacher:
        losses = np.zeros(len(rows))
    elif condition.label_noise and reads_labels(spec.teacher):
        if data.label_outputs is None:
            raise ValueError(
                f"{spec.case.label} under {condition.label}: a noisy-label condition scores the noisy labels "
                "from the teachers' logits; prepare the case with the condition in the profile "
                "(prepare.prepare_case), which reads them"
            )
        losses = relabelled_scores(spec.teacher, data.label_outputs[spec.teacher][rows], noisy)
    else:
        losses = data.teacher_losses[spec.teacher][rows]
    epochs = condition_epochs(profile.branch_epochs, condition)
    if pacing is not None:  # the same share of the run's batches as under the paper's condition
        batches = epochs * math.ceil(len(rows) / profile.branch_batch_size)
        paper = profile.branch_epochs * math.ceil(len(labels) / profile.branch_batch_size)
        pacing = scaled_pacing(pacing, batches / paper)
    features = data.features["train"]
    subset = features if len(rows) == len(labels) else _subset(features, rows)
    return (subset, noisy), losses, epochs, pacing


def _subset(features, rows: np.ndarray):
    return RowSubset(features, rows) if isinstance(features, LazyRows) else features[rows]


def _condition_fields(spec: RunSpec) -> dict:
    """A condition's settings for its row (``condition`` names it); none for the paper's."""
    if spec.condition.is_paper:
        return {}
    return {"condition": spec.condition.label, **asdict(spec.condition)}


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
