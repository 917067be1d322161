"""Whole-network strategies (the paper's Sec. V question): does curriculum learning help end-to-end and
layer-wise training?

Bakhtiarnia, Zhang & Iosifidis (2021) close by asking whether curriculum learning still helps when the exits
are trained otherwise than classifier-wise. This experiment answers it for the whole network (the other
answer, distilled exits, is ``distilled_exits``), with vanilla and with curriculum training
(``STRATEGY_METHODS``, which both experiments compare) and paired repetitions, its rows (stage
``network_strategy``) in the same resumable results store as Table IV's.

``run_network_strategies``: per (backbone, data set), each repetition trains the whole network four ways
(``NETWORK_STRATEGIES``): ``plain`` (every early-exit weight 0: the classifier as if trained alone, the
reference for the final exit), end to end with equal and with SDN weights, and layer-wise
(``whole_network``). Curriculum orders the whole network's training data by a teacher's losses; vanilla
draws its batches through the same sampler (λ ≡ 1). The strategies and both methods of one repetition share
their seeds. So plain is not the Table IV backbone: it trains in the network setting below, its batches
drawn by the vanilla sampler (``network_sampler``) rather than Keras' shuffled epochs, from the repetition's
"network" seed (``NetworkRun.seeds``) rather than the profile's. The rows are read by
``report.strategy_comparisons.strategy_table``.

Network runs train the backbone, the most expensive work there is, so they run in a setting of their own
(a profile with fewer images or epochs, stated where it is used); a pacing function there is given directly,
because the Table III presets count batches of branch runs thousands of batches long.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mecl_utils import __version__
from mecl_utils.cache import array_fingerprint, cache_key, cache_path, cached_arrays
from mecl_utils.curriculum.pacing import Pacing, parameters, preset
from mecl_utils.curriculum.sampler import CurriculumSampler, sampler_for_method
from mecl_utils.networks.branches import branch_layer
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.difficulty_scores import teacher_key
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import OUTPUT_SPLITS
from mecl_utils.protocol.trained_networks import (
    classifier_parts,
    network_batch_size,
)
from mecl_utils.run.case_networks import case_networks, load_splits
from mecl_utils.run.engine import Engine
from mecl_utils.seeds import stream_seed
from mecl_utils.strategies.multi_exit_network import MultiExit, exit_accuracies
from mecl_utils.strategies.whole_network import train_end_to_end, train_layer_wise

__all__ = [
    "NETWORK_STRATEGIES",
    "STRATEGY_METHODS",
    "NetworkRun",
    "exit_keys",
    "keep_network_outputs",
    "network_outputs",
    "network_sampler",
    "network_setting",
    "run_network_strategies",
    "stretched_pacing",
    "train_network",
]

NETWORK_STRATEGIES = ("plain", "end_to_end_equal", "end_to_end_sdn", "layer_wise")
STRATEGY_METHODS = ("vanilla", "curriculum")
# Part of every network run's identity: bump when what a run trains changes. 2: "sdn" weights follow Kaya et
# al.'s schedule, min(C_i, 0.01 + e·C_i/E) with C_i the compute share before exit i (were: relative depth).
NETWORK_RUNS_VERSION = 2
_WEIGHTING = {"end_to_end_equal": "equal", "end_to_end_sdn": "sdn"}


def network_setting(
    profile: Profile, images: int, epochs: int, repetitions: int, *, data_dir: str | None = None
) -> Profile:
    """The smaller setting of ``profile`` for whole-network runs.

    At most ``images`` training images, ``epochs`` epochs and at most ``repetitions`` repetitions; 0 keeps
    the profile's own value.
    """
    for name, value in (("images", images), ("epochs", epochs), ("repetitions", repetitions)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"network {name} must be a whole number >= 0 (0: the profile's own), got {value!r}"
            )
    available = min(len(load_splits(profile, name, data_dir)[1].train) for name in profile.datasets)
    return profile.replace(
        n_train=images if 0 < images < available else profile.n_train,
        backbone_epochs=epochs or profile.backbone_epochs,
        repetitions=min(repetitions, profile.repetitions) if repetitions else profile.repetitions,
    )


def run_batches(profile: Profile, dataset_name: str, batch_size: int, epochs: int, data_dir=None) -> int:
    """How many batches a run of ``epochs`` epochs over the profile's training split draws."""
    train = len(load_splits(profile, dataset_name, data_dir)[1].train)
    return epochs * math.ceil(train / batch_size)


def stretched_pacing(
    profile: Profile, networks: Profile, name: str, *, data_dir: str | None = None
) -> Pacing:
    """The Table III preset ``name`` stretched from the profile's branch runs to ``networks``' network runs.

    Its step length δ scales with the number of batches, so it reaches the whole training set at the same
    fraction of a network run as of a branch run.
    """
    pacing = preset(name)
    if not hasattr(pacing, "delta"):
        raise ValueError(f"{name} has no step length to stretch: give a FEP or SSP preset")
    dataset, backbone = profile.datasets[0], profile.backbones[0]
    branch = run_batches(profile, dataset, profile.branch_batch_size, profile.branch_epochs, data_dir)
    network = run_batches(networks, dataset, network_batch_size(backbone), networks.backbone_epochs, data_dir)
    return dataclasses.replace(pacing, delta=pacing.delta * network / branch)


@dataclass(frozen=True)
class NetworkRun:
    """One network trained one way: (backbone, data set, strategy, method, repetition)."""

    backbone: str
    dataset: str
    strategy: str
    method: str
    repetition: int
    teacher: str | None  # curriculum only
    pacing: Pacing | None  # curriculum only

    def seeds(self, profile: Profile) -> dict[str, int]:
        """Shared by every strategy and both methods of one repetition; apart from Table IV's streams."""
        group = f"{self.backbone}/{self.dataset}"
        return {
            stream: stream_seed(
                profile.seed, "network strategy", group, "repetition", self.repetition, stream
            )
            for stream in ("network", "init", "sampling", "order")
        }


def _layers(run: NetworkRun, profile: Profile) -> list[str]:
    return [branch_layer(run.backbone, run.dataset, number) for number in profile.branch_numbers]


def network_identity(run: NetworkRun, profile: Profile, dataset: Dataset, splits: Splits) -> dict:
    """Exactly what determines a network run's result (compare ``runs.run_identity``)."""
    seeds = run.seeds(profile)
    curriculum = run.method == "curriculum"
    return {
        "version": NETWORK_RUNS_VERSION,
        "strategy": run.strategy,
        "method": run.method,
        "network": classifier_parts(
            profile, run.backbone, dataset, splits, seed=seeds["network"], epochs=profile.backbone_epochs
        ),
        "layers": _layers(run, profile),
        "split_index": {name: array_fingerprint(getattr(splits, name).index) for name in OUTPUT_SPLITS},
        "teacher": teacher_key(profile, run.teacher, run.backbone, dataset, splits) if curriculum else None,
        "pacing": parameters(run.pacing) if curriculum else None,
        "sampler": {"class_balance": profile.class_balance if curriculum else None,
                    "vanilla_sampling": None if curriculum else profile.vanilla_sampling},
        "seeds": {**seeds, "order": seeds["order"] if curriculum else None},
    }  # fmt: skip


def network_run_id(run: NetworkRun, profile: Profile, dataset: Dataset, splits: Splits) -> str:
    payload = json.dumps(network_identity(run, profile, dataset, splits), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def network_sampler(
    profile: Profile, splits: Splits, losses: np.ndarray | None, run: NetworkRun
) -> CurriculumSampler:
    """The sampler ``run`` draws its batches from, seeded by its repetition's "sampling" stream.

    Curriculum: the training data ordered by the teacher's ``losses``, paced by ``run.pacing``. Vanilla (every
    strategy, plain included): the profile's ``vanilla_sampling``, "paced" meaning each batch drawn at random
    from the whole training split (λ ≡ 1); ``losses`` is not read.
    """
    seeds = run.seeds(profile)
    curriculum = run.method == "curriculum"
    return sampler_for_method(
        run.method,
        losses if curriculum else np.zeros(len(splits.train)),
        network_batch_size(run.backbone),
        run.pacing if curriculum else None,
        seed=seeds["sampling"],
        order_seed=seeds["order"],
        labels=splits.train.y,
        balance=profile.class_balance,
        vanilla_sampling=profile.vanilla_sampling,
    )


def train_network(
    profile: Profile, dataset: Dataset, splits: Splits, losses: np.ndarray | None, run: NetworkRun
) -> MultiExit:
    """``run``'s network trained on ``splits.train`` for ``profile.backbone_epochs``, through
    ``network_sampler``, from its repetition's "network" and "init" seeds (``NetworkRun.seeds``).

    Plain is end-to-end training with every early-exit weight 0: its classifier ends bit for bit as the
    classifier trained alone on its own loss through the same sampler from the same seed (a test checks it).
    """
    seeds = run.seeds(profile)
    layers = _layers(run, profile)
    common = {
        "seed": seeds["network"],
        "init_seed": seeds["init"],
        "sampler": network_sampler(profile, splits, losses, run),
    }
    if run.strategy == "layer_wise":
        return train_layer_wise(profile, run.backbone, dataset, splits, layers, **common)
    weighting = _WEIGHTING.get(run.strategy, tuple(0.0 for _ in layers))
    return train_end_to_end(profile, run.backbone, dataset, splits, layers, weighting=weighting, **common)[0]


def train_network_run(
    profile: Profile, dataset: Dataset, splits: Splits, losses: np.ndarray | None, run: NetworkRun
) -> tuple[dict, dict[str, np.ndarray]]:
    """Train one network run (``train_network``), writing nothing: its result row and every exit's outputs
    per split."""
    layers = _layers(run, profile)
    start = time.perf_counter()
    multi = train_network(profile, dataset, splits, losses, run)
    seconds = time.perf_counter() - start
    names = exit_keys(len(layers))
    row = {
        "stage": "network_strategy",
        "backbone": run.backbone,
        "dataset": run.dataset,
        "strategy": run.strategy,
        "method": run.method,
        "repetition": run.repetition,
        "teacher": run.teacher or "",
        "pacing": json.dumps(parameters(run.pacing)) if run.pacing else "",
        "layers": json.dumps(layers),
        "n_train": len(splits.train),
        "epochs": profile.backbone_epochs,
        "seconds": round(seconds, 3),
        "profile": profile.name,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "mecl_version": __version__,
    }
    outputs = {}
    for split in OUTPUT_SPLITS:
        probabilities, accuracies = exit_accuracies(multi, getattr(splits, split))
        for name, values, accuracy in zip(names, probabilities, accuracies, strict=True):
            outputs[f"{split}_{name}"] = values.astype(np.float32)
            if split != "hparam":
                row[f"{split}_accuracy_{name}"] = accuracy
    return row, outputs


def exit_keys(early_exits: int) -> list[str]:
    """How a network run names its exits in rows and outputs: ``exit1``, ..., then ``final``."""
    return [f"exit{number}" for number in range(1, early_exits + 1)] + ["final"]


def _outputs_path(run_id: str):
    return cache_path("network_outputs", cache_key({"version": 1, "run_id": run_id}), ".npz")


def keep_network_outputs(run_id: str, outputs: dict[str, np.ndarray]) -> None:
    """Cache a network run's outputs, replacing any kept there before (``branch_runs.keep_outputs``' rule).

    Outputs are written before their row, so a run stopped in between leaves outputs without a row; the run
    then trains again and its outputs replace those left behind, never the other way round.
    """
    _outputs_path(run_id).unlink(missing_ok=True)
    cached_arrays("network_outputs", {"version": 1, "run_id": run_id}, lambda: outputs)


def network_outputs(run_id: str) -> dict[str, np.ndarray]:
    """A network run's softmax outputs by "<split>_<exit>" (``test_exit1``, ``val_final``...): N × classes."""
    path = _outputs_path(run_id)
    if not path.is_file():
        raise KeyError(f"no outputs cached for network run {run_id} ({path})")
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def run_network_strategies(
    profile: Profile,
    backbone: str,
    dataset_name: str,
    store: ResultsStore,
    *,
    teacher: str,
    pacing: Pacing,
    strategies: tuple[str, ...] = NETWORK_STRATEGIES,
    data_dir: str | None = None,
    engine: Engine | None = None,
    on_run: Callable[[NetworkRun, bool], None] | None = None,
) -> list[str]:
    """Every repetition × strategy × method of ``backbone`` on ``dataset_name``; finished runs are skipped.

    The curriculum runs order the training data by ``teacher``'s losses (trained and scored through
    ``case_networks``) and pace it with ``pacing``. Runs train as Ray tasks on ``engine`` (default:
    an embedded instance) and the driver stores each row as it arrives. Returns the run_ids in grid order.
    """
    unknown = sorted(set(strategies) - set(NETWORK_STRATEGIES))
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; valid: {', '.join(NETWORK_STRATEGIES)}")
    if teacher not in profile.teachers:
        raise ValueError(f"teacher {teacher!r} is not one of the profile's teachers {profile.teachers}")
    if not isinstance(pacing, Pacing):
        raise TypeError(f"pacing must be a pacing function (e.g. pacing.FixedExponential), got {pacing!r}")
    dataset, splits = load_splits(profile, dataset_name, data_dir)
    with contextlib.ExitStack() as stack:
        engine = engine if engine is not None else stack.enter_context(Engine())
        losses = case_networks(profile, backbone, dataset, splits, engine=engine).teacher_losses[teacher]
        runs = [
            NetworkRun(backbone, dataset_name, strategy, method, repetition,
                       *((teacher, pacing) if method == "curriculum" else (None, None)))
            for repetition in range(profile.repetitions)
            for strategy in strategies
            for method in STRATEGY_METHODS
        ]  # fmt: skip
        run_ids = {run: network_run_id(run, profile, dataset, splits) for run in runs}
        done = [run for run in runs if run_ids[run] in store]
        for run in done:
            if on_run is not None:
                on_run(run, True)
        missing = [run for run in runs if run not in done]
        for run, (row, outputs) in engine.map(train_network_run, missing, profile, dataset, splits, losses):
            keep_network_outputs(run_ids[run], outputs)
            store.append({"run_id": run_ids[run], **row})
            if on_run is not None:
                on_run(run, False)
    return [run_ids[run] for run in runs]
