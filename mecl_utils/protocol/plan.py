"""A profile's grid before it runs: per case, what its cached features weigh, how many runs, how long.

Classifier-wise training (Sec. II-A, III) caches the backbone's activations at the branch layer for every
image of every split, and every branch run of the case reads them. At the book profile's 64-pixel inputs
they are small; at the paper's native input sizes they are not (ResNet152's ``conv3_block1_out`` for the
40,000 training images is 28 × 28 × 512 float32 values per image, about 64 GB). :func:`grid_plan` works
this out per case without training anything: the feature shape comes from the backbone built with random
weights (no download), the split sizes from the profile, the number of runs from the protocol, and a time
estimate from the median measured seconds of the runs already stored for the profile, when there are any.
Where the features live is ``feature_modes.choose_mode``'s answer, the very call ``run`` makes; it reads a
data set only when the cache holds complete shards of a case's layer, to tell whether they are the case's.

    python -m mecl_utils plan --profile paper
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import psutil

from mecl_utils.networks.branches import branch_layer
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.branch_inputs import layer_shapes
from mecl_utils.protocol.feature_modes import Budget, choose_mode, feature_bytes
from mecl_utils.protocol.features import SPLIT_NAMES
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.runs import Case, cases
from mecl_utils.protocol.stages import planned_runs, stale_rows

__all__ = ["CasePlan", "grid_plan", "plan_table", "split_sizes"]

# The official sizes of the data sets' training and test sets (CIFAR's are fixed; the digits' come from
# data._load_digits, whose test fraction is fixed too).
OFFICIAL_SIZES = {
    "cifar10": (50_000, 10_000),
    "cifar100": (50_000, 10_000),
    "cifar100-coarse": (50_000, 10_000),
}
INPUT_SHAPES = {"digits": (8, 8, 1)}  # every CIFAR variant: 32 × 32 × 3


@dataclass(frozen=True)
class CasePlan:
    case: Case
    layer: str
    feature_shape: tuple[int, ...]
    images: dict[str, int]  # split name -> number of images
    runs: int
    seconds_per_run: float | None  # median of the profile's stored runs; None when there are none
    mode: str  # where the branch's inputs live (feature_modes.choose_mode, as run chooses)

    @property
    def feature_bytes(self) -> int:
        """float32 bytes of the branch layer's features over every split."""
        return feature_bytes(sum(self.images.values()), self.feature_shape)

    @property
    def stored_bytes(self) -> int:
        """What the mode keeps of them: float32 in memory, float16 on disk, nothing for the cut backbone."""
        return {"memory": self.feature_bytes, "shards": self.feature_bytes // 2}.get(self.mode, 0)

    @property
    def estimated_seconds(self) -> float | None:
        return None if self.seconds_per_run is None else self.runs * self.seconds_per_run


def split_sizes(profile: Profile, dataset_name: str) -> dict[str, int]:
    """Images per split (train, val, hparam, test) for ``dataset_name`` at the profile's sizes."""
    if dataset_name in OFFICIAL_SIZES:
        n_pool, n_official_test = OFFICIAL_SIZES[dataset_name]
    else:
        from mecl_utils.networks.data import load_dataset  # the bundled digits: cheap, offline

        digits = load_dataset(dataset_name)
        n_pool, n_official_test = len(digits.y_train), len(digits.y_test)
    n_train = profile.n_train or n_pool - profile.n_val - profile.n_hparam
    sizes = {"train": n_train, "val": profile.n_val, "hparam": profile.n_hparam}
    sizes["test"] = profile.n_test or n_official_test
    assert tuple(sizes) == SPLIT_NAMES
    return sizes


def _seconds_per_run(results: pd.DataFrame | None, profile: Profile) -> float | None:
    if results is None or results.empty or "seconds" not in results:
        return None
    current = results[~stale_rows(results)]
    if "profile" in current:
        current = current[current["profile"] == profile.name]
    return float(current["seconds"].median()) if len(current) else None


def grid_plan(
    profile: Profile,
    results: pd.DataFrame | None = None,
    budget: Budget | None = None,
    *,
    data: Callable[[str], tuple[Dataset, Splits]] | None = None,
) -> list[CasePlan]:
    """One ``CasePlan`` per case of ``profile``; ``results``: a results frame to take run times from.

    Each case's mode is chosen on ``budget`` (default: this machine's) by ``choose_mode``, as ``run``
    chooses it, in the grid's order. A budget of half the free disk space shrinks by half of each earlier
    case's shards (``run`` measures the free space when it reaches a case, and keeps shards already
    written); a set one does not. ``data(name)``: the data set of that name and its splits at the profile's
    sizes (``case_networks.load_splits``), which ``choose_mode`` asks for when the cache holds complete
    shards of a case's layer.
    """
    seconds = _seconds_per_run(results, profile)
    budget = budget or Budget.of_this_machine()
    layers = {case: branch_layer(case.backbone, case.dataset, case.branch) for case in cases(profile)}

    def model_key(case: Case) -> tuple[str, tuple[int, int, int]]:
        return case.backbone, INPUT_SHAPES.get(case.dataset, (32, 32, 3))

    wanted: dict[tuple, set[str]] = {}  # one model per backbone and input shape, for all its layers
    for case, layer in layers.items():
        wanted.setdefault(model_key(case), set()).add(layer)
    shapes = {key: layer_shapes(profile, *key, names) for key, names in wanted.items()}
    plans = []
    for case, layer in layers.items():
        shape, images = shapes[model_key(case)][layer], split_sizes(profile, case.dataset)
        size = feature_bytes(sum(images.values()), shape)
        mode = choose_mode(profile, case.backbone, layer, size, budget, data=_loader(data, case, layer))
        plans.append(CasePlan(case, layer, shape, images, planned_runs(profile), seconds, mode))
        if mode == "shards":  # the free space the next case finds is smaller
            budget = budget.after_writing(plans[-1].stored_bytes)
    return plans


def _loader(
    data: Callable[[str], tuple[Dataset, Splits]] | None, case: Case, layer: str
) -> Callable[[], tuple[Dataset, Splits]]:
    """``case``'s data set and splits from ``data``, or an error that says why the plan needs them."""

    def load() -> tuple[Dataset, Splits]:
        if data is None:
            raise ValueError(
                f"The cache holds feature shards of {case.backbone} at {layer}: to tell whether they are "
                f"complete for {case.label}, as run would, grid_plan needs the data: pass "
                "data=lambda name: case_networks.load_splits(profile, name)."
            )
        return data(case.dataset)

    return load


def plan_table(plans: list[CasePlan], memory_bytes: int | None = None) -> pd.DataFrame:
    """The plans as a table: features (float32 GiB, share of this machine's memory), the mode and what it
    stores, runs, time."""
    memory_bytes = memory_bytes or psutil.virtual_memory().total
    rows = []
    for plan in plans:
        minutes = plan.estimated_seconds
        rows.append(
            {
                "case": plan.case.label,
                "layer": plan.layer,
                "feature shape": "×".join(map(str, plan.feature_shape)),
                "images": sum(plan.images.values()),
                "features GiB": round(plan.feature_bytes / 2**30, 2),
                "of RAM": f"{plan.feature_bytes / memory_bytes:.0%}",
                "mode": plan.mode,
                "stored GiB": round(plan.stored_bytes / 2**30, 2),
                "runs": plan.runs,
                "est. minutes": None if minutes is None else round(minutes / 60, 1),
            }
        )
    return pd.DataFrame(rows)
