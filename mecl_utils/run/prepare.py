"""From a profile and a case to what its runs read (Sec. III): data, backbone, features, teacher scores.

For one case (backbone, dataset, branch number) of a profile this loads the data set and its four splits,
trains (or loads from the cache) the backbone and the teachers, side by side as Ray tasks
(``prepare_networks``), scores the training split with every teacher of the profile, and extracts the
branch layer's activations for every split, where they fit (``feature_modes``: in memory, as float16
shards on disk, or computed by the cut backbone in every run). Everything heavy is cached by the modules it
comes from (``teachers``, ``features``, ``feature_modes``), so a second call is fast; within one process
the loaded data set is reused for both branches of a backbone.

``run_grid`` is the whole profile: every case prepared and its protocol (``stages.case_stages``) run,
with the branch runs as parallel Ray tasks (``engine.Engine``) and cases side by side (``grid``), under one
progress bar.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time

import numpy as np
from tqdm.auto import tqdm

from mecl_utils.cache import array_fingerprint, cache_key, cache_path, cached_arrays, dataset_fingerprint
from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.networks.backbones import get_layer
from mecl_utils.networks.branches import branch_layer
from mecl_utils.networks.data import Dataset, Splits, load_dataset, make_splits
from mecl_utils.protocol.feature_modes import (
    Budget,
    cached_feature_shards,
    choose_mode,
    cut_backbone,
    feature_bytes,
    shards_complete,
)
from mecl_utils.protocol.feature_modes import identity as feature_identity
from mecl_utils.protocol.features import SPLIT_NAMES, cached_features
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import Case, CaseData, RunSpec, cases
from mecl_utils.protocol.stages import planned_runs, stale_rows
from mecl_utils.protocol.teachers import (
    backbone_key,
    classifier_parts,
    evaluate,
    is_self_taught,
    losses_parts,
    teacher_losses,
    teacher_recipe,
    trained_backbone,
    trained_teacher,
)
from mecl_utils.run.engine import Engine
from mecl_utils.run.grid import run_cases
from mecl_utils.seeds import stream_seed
from mecl_utils.training.classifier_wise import TRAINING_VERSION

__all__ = [
    "layer_feature_mode",
    "load_splits",
    "network_roles",
    "prepare_case",
    "prepare_networks",
    "run_grid",
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
    independent = (t for t in profile.teachers if not is_self_taught(t, backbone_network))
    return ("backbone", *independent)


def _outputs(
    profile: Profile, role: str, backbone_network: str, dataset: Dataset, splits: Splits, seed: int
) -> list[tuple[str, dict, str]]:
    """(cache kind, key parts, suffix) of what ``_prepare_job`` computes for ``role``."""
    teacher = _as_teacher(role)
    network, net_seed, epochs = teacher_recipe(profile, teacher, backbone_network, seed)
    classifier = classifier_parts(profile, network, dataset, splits, seed=net_seed, epochs=epochs)
    outputs = [("classifier", classifier, ".keras")]
    if _scores(profile, role, backbone_network):
        parts = losses_parts(profile, teacher, backbone_network, dataset, splits, seed)
        outputs.append(("teacher_losses", parts, ".npz"))
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
    trained_teacher(profile, teacher, backbone_network, dataset, splits, seed=seed, verbose=verbose)
    if _scores(profile, role, backbone_network):
        teacher_losses(profile, teacher, backbone_network, dataset, splits, seed=seed)


def prepare_case(
    profile: Profile,
    case: Case,
    *,
    data_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    engine: Engine | None = None,
    budget: Budget | None = None,
    verbose: bool = False,
) -> CaseData:
    """Features, labels and teacher losses for ``case``, with timings of each stage in ``info``.

    The stages: data (load and split), networks (``prepare_networks``: backbone and teachers trained side by
    side, the training split scored; then the backbone's test accuracy), features of the branch layer, held
    as ``layer_feature_mode`` chooses on ``budget`` (default: this machine's). ``workers`` and ``engine`` go
    to ``prepare_networks``.
    """
    timings = {}
    start = time.perf_counter()
    dataset, splits = load_splits(profile, case.dataset, None if data_dir is None else str(data_dir))
    timings["data_seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    prepare_networks(
        profile,
        case.backbone,
        dataset,
        splits,
        seed=profile.seed,
        workers=workers,
        engine=engine,
        verbose=verbose,
    )
    backbone = trained_backbone(profile, case.backbone, dataset, splits, seed=profile.seed)
    key = backbone_key(profile, case.backbone, dataset, splits, seed=profile.seed)
    # Cached: every chapter prepares its cases again, and predicting the whole test split each time would
    # repeat the same few seconds of work.
    test_accuracy = cached_arrays(
        "test_accuracy",
        {"classifier": key, "test_index": array_fingerprint(splits.test.index)},
        lambda: {"accuracy": np.array(evaluate(backbone, splits.test))},
    )["accuracy"]
    losses = {
        teacher: teacher_losses(profile, teacher, case.backbone, dataset, splits, seed=profile.seed)
        for teacher in profile.teachers
    }
    timings["networks_seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    layer = branch_layer(case.backbone, case.dataset, case.branch)
    budget = budget or Budget.of_this_machine()
    # One pass of the backbone for every branch layer of the profile costs less than one pass per layer
    # (benchmarks/README.md), and the other branches of this backbone then find theirs in the cache: every
    # layer whose own mode is this case's is extracted together, while they fit in memory together.
    sizes, modes = {}, {}
    for number in profile.branch_numbers:
        other = branch_layer(case.backbone, case.dataset, number)
        sizes[other] = _feature_bytes(backbone, other, splits)
        modes[other] = layer_feature_mode(
            profile, case.backbone, other, sizes[other], key, dataset, splits, budget
        )
    mode = modes[layer]
    layers = [layer, *sorted(other for other in modes if other != layer and modes[other] == mode)]
    if mode == "memory" and sum(sizes[name] for name in layers) > budget.memory_bytes:
        layers = [layer]
    cut = None
    if mode == "backbone":
        cut = cut_backbone(backbone, layer)
        inputs = {name: getattr(splits, name).x for name in SPLIT_NAMES}
    else:
        if mode == "memory":
            features = cached_features(
                profile, case.backbone, dataset, splits, key, layers, classifier=backbone, verbose=verbose
            )
        else:
            features = cached_feature_shards(
                backbone, key, case.backbone, dataset, splits, layers, verbose=verbose
            )
        inputs = {split: by_layer[layer] for split, by_layer in features.items()}
    timings["features_seconds"] = time.perf_counter() - start

    return CaseData(
        features=inputs,
        labels={name: getattr(splits, name).y for name in inputs},
        teacher_losses=losses,
        num_classes=dataset.num_classes,
        layer=layer,
        provenance={"data_fingerprint": dataset_fingerprint(dataset)[:16], "backbone_key": key},
        identity={
            "backbone": key,
            "features": feature_identity(mode),
            "split_index": {name: array_fingerprint(getattr(splits, name).index) for name in inputs},
            "teachers": {
                teacher: cache_key(
                    losses_parts(profile, teacher, case.backbone, dataset, splits, profile.seed)
                )
                for teacher in profile.teachers
            },
        },
        info={
            "data_source": dataset.source,
            "backbone_test_accuracy": float(test_accuracy),
            "feature_mode": mode,
            **{name: round(seconds, 2) for name, seconds in timings.items()},
        },
        feature_mode=mode,
        cut_backbone=cut,
    )


def _feature_bytes(backbone, layer: str, splits: Splits) -> int:
    shape = tuple(get_layer(backbone, layer).output.shape[1:])
    return feature_bytes(sum(len(getattr(splits, name)) for name in SPLIT_NAMES), shape)


def layer_feature_mode(
    profile: Profile,
    network: str,
    layer: str,
    size: int,
    backbone_parts_key: str,
    dataset: Dataset,
    splits: Splits,
    budget: Budget,
) -> str:
    """Where a branch's inputs at ``layer`` live: ``feature_modes.choose_mode`` of their float32 ``size``.

    Shards already written for the layer are kept even if the disk has since filled up, so that a resumed
    grid trains the same runs it started with.
    """
    mode = choose_mode(size, budget, profile.feature_mode)
    if profile.feature_mode == "auto" and mode == "backbone":
        if shards_complete(backbone_parts_key, network, dataset, splits, layer):
            return "shards"
    return mode


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
