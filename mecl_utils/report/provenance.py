"""Where a page's numbers come from: the profile, the data, the machine and the time each stage took.

A chapter with results opens with ``profile_note`` (which profile and data made them, and why); the
reproduction chapter sets the profiles side by side (``profile_table``), names the machine
(``machine_table``) and sums the measured seconds per stage of the protocol (``timing_summary``). Chapters
that train the paper's networks set their accuracy beside Table I's (``paper_accuracy``), since a profile
smaller than the paper's is no reproduction of its numbers.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mecl_utils.cache import cache_dir
from mecl_utils.networks.backbones import NETWORKS
from mecl_utils.protocol.profiles import Profile, get_profile
from mecl_utils.protocol.runs import cases
from mecl_utils.protocol.stages import planned_runs

__all__ = [
    "PREPARATION",
    "STAGES",
    "machine_table",
    "paper_accuracy",
    "profile_note",
    "profile_table",
    "timing_summary",
]

STAGES = ("vanilla_search", "curriculum_search", "repetition")
PREPARATION = ("data_seconds", "networks_seconds", "features_seconds")


def profile_note(profile: str | Profile, reason: str = "", data_source: str | None = None) -> str:
    """A MyST ``{note}`` saying which profile and data produced a chapter's numbers, and why."""
    settings = get_profile(profile) if isinstance(profile, str) else profile
    if settings.name == "smoke":
        body = (
            "These numbers come from the offline **smoke** profile on 8×8 digits (scikit-learn's bundled "
            "set) with a tiny CNN as backbone, not CIFAR-10 and not the paper's networks. They show that "
            "every step runs; they are no evidence for or against the paper. For CIFAR-10, run "
            "`make book PROFILE=book DATA_DIR=…` (see *How to reproduce*)."
        )
    elif settings.name == "book":
        train = "all" if settings.n_train is None else f"{settings.n_train:,}"
        body = (
            f"These numbers come from the **book** profile: CIFAR-10 with {train} training images, "
            f"{', '.join(settings.backbones)} (α = {settings.mobilenet_alpha}) at "
            f"{settings.image_size}×{settings.image_size} pixels and {_repetitions(settings)}. "
            "That is far smaller than the paper's set-up: compare directions, not decimals."
        )
    else:
        body = (
            f"These numbers come from the **{settings.name}** profile: "
            f"{', '.join(settings.datasets)}, backbones {', '.join(settings.backbones)}, "
            f"{_repetitions(settings)}."
        )
    lines = [":::{note}", body]
    if data_source:
        lines.append(f"Data read from: `{data_source}`.")
    if reason:
        lines.append(f"Why this profile: {reason}")
    return "\n\n".join(lines) + "\n:::\n"


def _repetitions(settings: Profile) -> str:
    """How many repetitions each method has, in words (one count when all share it)."""
    main, other = settings.repetitions_of("vanilla"), settings.repetitions
    if main == other:
        return f"{other} repetitions"
    return f"{main} repetitions of vanilla and curriculum, {other} of anti- and random curriculum"


def profile_table(profiles: Mapping[str, Profile]) -> pd.DataFrame:
    """What each profile runs, one column per profile: data, networks, search grids and branch runs."""
    rows = {}
    for name, settings in profiles.items():
        runs_per_case, n_cases = planned_runs(settings), len(cases(settings))
        rows[name] = {
            "data sets": ", ".join(settings.datasets),
            "backbones": ", ".join(settings.backbones),
            "teachers": ", ".join(settings.teachers),
            "training images": "all" if settings.n_train is None else settings.n_train,
            "optimizer × learning rate": f"{len(settings.optimizers)} × {len(settings.learning_rates)}",
            "teacher × pacing": f"{len(settings.teachers)} × {len(settings.pacings)}",
            "repetitions": _repetitions(settings),
            "branch epochs": settings.branch_epochs,
            "cases": n_cases,
            "branch runs per case": runs_per_case,
            "branch runs in all": runs_per_case * n_cases,
        }
    return pd.DataFrame(rows)


def paper_accuracy(network: str, dataset: str = "cifar10") -> float:
    """Table I's test accuracy (%) of ``network`` on ``dataset`` ('cifar10' or 'cifar100'); NaN for a
    network that is not one of the paper's."""
    spec = NETWORKS.get(network)
    return np.nan if spec is None else 100 * getattr(spec, f"paper_accuracy_{dataset}")


def machine_table(results_path: str | os.PathLike) -> pd.DataFrame:
    """The machine running this page, one row per fact: processor, cores, GPUs, versions, folders."""
    import keras
    import tensorflow as tf

    machine = {
        "processor": platform.processor() or platform.machine(),
        "CPU cores visible": os.cpu_count(),
        "GPUs visible to TensorFlow": len(tf.config.list_physical_devices("GPU")),
        "Python": platform.python_version(),
        "TensorFlow": tf.__version__,
        "Keras": keras.__version__,
        "cache folder": str(cache_dir()),
        "results file": str(results_path),
    }
    return pd.Series(machine, name="value").to_frame()


def timing_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Measured seconds per stage: preparation (the slowest record per case, summed) and training runs.

    ``count`` is the number of cases for the preparation rows, the number of runs for the training stages.
    The preparation timings are copied into every row of a case; a case prepared again from the cache
    records small numbers, so the largest value per case stands for the cold cost.
    """
    cases = results.groupby(["backbone", "dataset", "branch"], sort=False)
    rows = []
    for column in PREPARATION:
        if column in results:
            stage, seconds = column.removesuffix("_seconds"), float(cases[column].max().sum())
            rows.append({"stage": stage, "count": cases.ngroups, "seconds": seconds})
    for stage in STAGES:
        chosen = results[results["stage"] == stage]
        rows.append({"stage": stage, "count": len(chosen), "seconds": float(chosen["seconds"].sum())})
    summary = pd.DataFrame(rows).set_index("stage")
    summary.loc["total"] = [np.nan, summary["seconds"].sum()]
    return summary
