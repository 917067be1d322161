"""A case's networks (Sec. III): the backbone and the teachers, trained side by side, with their cache keys.

For one case (backbone, dataset) of a profile this loads the data set and its four splits (``load_splits``),
trains what the cache lacks of the backbone and every independent teacher, side by side as Ray tasks
(``prepare_networks``; every network of a grid at once: ``prepare_grid_networks``), and scores the training
split with every teacher of the profile. ``case_networks`` gives the result: the trained backbone and every
teacher's scores, each with its cache key (``trained_networks.network_keys``), as the protocol, the strategies
and the chapters read them. Within one process the loaded data set is reused for every case of a dataset.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass

import keras
import numpy as np
from tqdm.auto import tqdm

from mecl_utils.cache import cache_key, cache_path
from mecl_utils.curriculum.difficulty import SCORES
from mecl_utils.networks.data import Dataset, Splits, load_dataset, make_splits
from mecl_utils.protocol.difficulty_scores import teacher_key, teacher_scores
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.runs import Case
from mecl_utils.protocol.trained_networks import (
    is_self_taught,
    network_keys,
    teacher_losses,
    trained_backbone,
    trained_teacher,
)
from mecl_utils.run.engine import Engine
from mecl_utils.seeds import stream_seed

__all__ = [
    "CaseNetworks",
    "case_networks",
    "load_splits",
    "network_roles",
    "prepare_grid_networks",
    "prepare_networks",
]


@functools.lru_cache(maxsize=2)
def load_splits(profile: Profile, dataset_name: str, data_dir: str | None = None) -> tuple[Dataset, Splits]:
    """The data set and its train/val/hparam/test splits at the profile's sizes (the "splits" seed stream)."""
    dataset = load_dataset(dataset_name, data_dir)
    splits = make_splits(
        dataset,
        seed=stream_seed(profile.seed, "splits", dataset_name),
        n_val=profile.n_val,
        n_hparam=profile.n_hparam,
        n_train=profile.n_train,
        n_test=profile.n_test,
    )
    return dataset, splits


def prepare_networks(
    profile: Profile,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    *,
    seed: int,
    workers: int | None = None,
    engine: Engine | None = None,
    verbose: bool = False,
) -> list[str]:
    """Train the backbone and every independent teacher, and score the training split with every teacher.

    Everything lands in the cache, where ``trained_backbone``, ``trained_teacher`` and ``teacher_losses``
    then find it. The networks do not depend on each other, so the missing ones train side by side, one
    Ray task each with TensorFlow on one thread (``engine.Engine``): fine-tuning a network in one process
    kept about 1.3 of 2 cores busy here (``benchmarks/README.md``). ``engine``: the engine to use (else one
    made for the call with ``workers``, None: ``engine.default_workers()``); ``workers=0`` trains in this
    process, one network after the other. As with branch runs, a network's weights never depend on what
    trained beside it, but those trained in this process can differ from the tasks' in the last digits;
    so the chapters and the command line train their networks through here, whichever of them runs first.

    ``verbose`` shows Keras' progress bars when training in this process.

    Returns the roles trained now ("backbone" or a teacher's name); the cached ones are skipped.
    """
    wanted = [(backbone_network, dataset, splits)]
    trained = _train_networks(profile, wanted, seed=seed, workers=workers, engine=engine, verbose=verbose)
    return [role for _, _, role in trained]


def prepare_grid_networks(
    profile: Profile,
    selected: list[Case],
    *,
    data_dir: str | os.PathLike | None = None,
    engine: Engine | None = None,
    verbose: bool = False,
) -> list[tuple[str, str, str]]:
    """Every network the ``selected`` cases need, trained side by side before the first case opens.

    A case's own preparation trains only its backbone's networks, so the networks of the cases behind it
    would wait, one or two cases at a time, while a cluster's other workers idle. A teacher shared by
    several backbones trains once. Returns (backbone network, dataset, role) of each network trained now.
    """
    datasets = dict.fromkeys(case.dataset for case in selected)
    loaded = {
        name: load_splits(profile, name, None if data_dir is None else str(data_dir)) for name in datasets
    }
    wanted = [
        (backbone, *loaded[name])
        for backbone, name in dict.fromkeys((c.backbone, c.dataset) for c in selected)
    ]
    return _train_networks(profile, wanted, seed=profile.seed, engine=engine, verbose=verbose)


def _train_networks(
    profile: Profile,
    wanted: list[tuple[str, Dataset, Splits]],
    *,
    seed: int,
    workers: int | None = None,
    engine: Engine | None = None,
    verbose: bool = False,
) -> list[tuple[str, str, str]]:
    """Train the networks of each (backbone network, dataset, splits) that the cache lacks, each once."""
    datasets = {dataset.name: (dataset, splits) for _, dataset, splits in wanted}
    missing: dict[tuple, tuple[str, str, str]] = {}
    for backbone_network, dataset, splits in wanted:
        for role in network_roles(profile, backbone_network):
            outputs = _outputs(profile, role, backbone_network, dataset, splits, seed)
            where = tuple(cache_path(kind, cache_key(parts), suffix) for kind, parts, suffix in outputs)
            if not all(path.is_file() for path in where):
                missing.setdefault(where, (backbone_network, dataset.name, role))  # a shared teacher: once
    jobs = list(missing.values())
    if not jobs:
        return jobs
    with contextlib.ExitStack() as stack:
        engine = engine if engine is not None else stack.enter_context(Engine(workers))
        if engine.in_process:
            for job in jobs:
                _prepare_job(profile, datasets, seed, job, verbose)
            return jobs
        what = _describe(jobs, single_case=len(wanted) == 1, several_datasets=len(datasets) > 1)
        together = " side by side" if len(jobs) > 1 else ""
        progress = stack.enter_context(
            tqdm(total=len(jobs), unit="network", desc=f"training {what}{together}")
        )
        for _ in engine.map(_prepare_job, jobs, profile, datasets, seed):
            progress.update()
    return jobs


def network_roles(profile: Profile, backbone_network: str) -> tuple[str, ...]:
    """The networks a case of ``backbone_network`` trains: the backbone and each independent teacher.

    A self-taught teacher ("self", or the backbone's own network by name) trains nothing of its own.
    """
    independent = (t for t in profile.teachers if t not in SCORES and not is_self_taught(t, backbone_network))
    return ("backbone", *independent)


def _outputs(
    profile: Profile, role: str, backbone_network: str, dataset: Dataset, splits: Splits, seed: int
) -> list[tuple[str, dict, str]]:
    """(cache kind, key parts, suffix) of what ``_prepare_job`` computes for ``role``."""
    keys = network_keys(profile, _as_teacher(role), backbone_network, dataset, splits, seed=seed)
    outputs = [("classifier", keys.parts, ".keras")]
    if _scores(profile, role, backbone_network):
        outputs.append(("teacher_losses", keys.losses_parts, ".npz"))
    return outputs


def _as_teacher(role: str) -> str:
    """The teacher name whose recipe trains ``role``'s network: the backbone's is the self-taught one."""
    return "self" if role == "backbone" else role


def _scores(profile: Profile, role: str, backbone_network: str) -> bool:
    """Whether ``role``'s network is one of the profile's teachers, so its losses are needed too."""
    if role == "backbone":
        return any(is_self_taught(teacher, backbone_network) for teacher in profile.teachers)
    return role in profile.teachers


def _describe(jobs: list[tuple[str, str, str]], *, single_case: bool, several_datasets: bool) -> str:
    """What a progress bar says it trains: the roles of one case's networks, else the networks by name."""
    if single_case:
        return ", ".join(role for _, _, role in jobs)
    if len(jobs) > 4:
        return f"{len(jobs)} networks"
    names = [backbone if role == "backbone" else f"{role} teacher" for backbone, _, role in jobs]
    if several_datasets:
        names = [f"{name} ({dataset})" for name, (_, dataset, _) in zip(names, jobs, strict=True)]
    return ", ".join(names)


def _prepare_job(
    profile: Profile,
    datasets: dict[str, tuple[Dataset, Splits]],
    seed: int,
    job: tuple[str, str, str],
    verbose: bool = False,
) -> None:
    """Train ``job``'s network, (backbone network, dataset name, role), and compute the losses it scores.

    The role is "backbone" or a teacher's name.
    """
    backbone_network, dataset_name, role = job
    dataset, splits = datasets[dataset_name]
    teacher = _as_teacher(role)
    model = trained_teacher(profile, teacher, backbone_network, dataset, splits, seed=seed, verbose=verbose)
    if _scores(profile, role, backbone_network):  # scored by the network in hand, not one read back
        teacher_losses(profile, teacher, backbone_network, dataset, splits, seed=seed, trained=model)


@dataclass(frozen=True, eq=False)
class CaseNetworks:
    """A case's trained networks with their cache keys: the backbone, and every teacher's scores."""

    backbone: keras.Model
    backbone_key: str  # the backbone's cache key: what a run's identity and the features hold of it
    teacher_losses: dict[str, np.ndarray]  # teacher -> per-sample loss on the training split
    teacher_keys: dict[str, str]  # teacher -> the cache key of its losses: what a run's identity holds


def case_networks(
    profile: Profile,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    *,
    workers: int | None = None,
    engine: Engine | None = None,
    verbose: bool = False,
) -> CaseNetworks:
    """The backbone and every teacher's scores of a case of ``backbone_network``, from the profile's seed.

    What the cache lacks trains first, side by side (``prepare_networks``, to which ``workers``, ``engine``
    and ``verbose`` go); the rest is read from the cache.
    """
    prepare_networks(
        profile, backbone_network, dataset, splits, seed=profile.seed, workers=workers, engine=engine,
        verbose=verbose,
    )  # fmt: skip
    backbone = trained_backbone(profile, backbone_network, dataset, splits, seed=profile.seed)
    orderings = dict.fromkeys((*profile.teachers, *profile.scores))  # teachers, then the compared scores
    return CaseNetworks(
        backbone=backbone,
        backbone_key=network_keys(profile, "self", backbone_network, dataset, splits, seed=profile.seed).key,
        teacher_losses={
            name: teacher_scores(profile, name, backbone_network, dataset, splits, backbone=backbone)
            for name in orderings
        },
        teacher_keys={
            name: teacher_key(profile, name, backbone_network, dataset, splits) for name in orderings
        },
    )
