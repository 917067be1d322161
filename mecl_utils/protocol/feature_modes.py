"""Features that fit: a case's branch inputs in memory, as float16 shards on disk, or from the cut backbone.

Classifier-wise training (Sec. II-A, III) feeds each branch the frozen backbone's activations at its
layer. The smoke and book profiles hold them in memory (``features.cached_features``). At the paper's native
input sizes they do not fit: ResNet152's ``conv3_block1_out`` is 64 GB for the training images alone
(``python -m mecl_utils plan``). ``choose_mode`` picks, per case, from the float32 size of all its splits:

- ``memory``: float32 arrays in RAM, while they take at most the memory budget (half of RAM);
- ``shards``: float16 ``.npy`` shards on disk, half the bytes, while they take at most the disk budget (half
  the cache disk's free space), or whenever complete shards of the case's layer are already written. They
  are memory-mapped and gathered batch by batch inside the ``tf.data`` pipeline (``feature_shards``), so
  RAM holds a batch, not a split;
- ``backbone``: nothing is stored. The backbone cut at the branch layer (``cut_backbone``) runs frozen inside
  the training graph, and every branch run pays its forward passes: the mode for a GPU.

``choose_mode`` is the one place the choice is made: ``run`` (``prepare.prepare_case``) holds a case's
features as it says, and ``plan`` (``plan.grid_plan``) prints what it says before anything runs. The
float16 copy changes what a branch reads, so the mode enters each run's identity (``identity``), and result
rows record it. ``MECL_FEATURE_MEMORY_GIB`` and ``MECL_FEATURE_DISK_GIB`` replace the budgets; a profile's
``feature_mode`` forces one mode.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import psutil

from mecl_utils.cache import cache_dir
from mecl_utils.networks.backbones import get_layer
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.feature_shards import any_complete_shards, shards_complete
from mecl_utils.protocol.features import FEATURES_VERSION
from mecl_utils.protocol.profiles import FEATURE_MODES, Profile
from mecl_utils.protocol.trained_networks import backbone_key

__all__ = ["FEATURE_MODES", "Budget", "choose_mode", "cut_backbone", "feature_bytes", "identity"]

BUDGET_SHARE = 0.5  # of RAM (memory) and of the cache disk's free space (shards)


@dataclass(frozen=True)
class Budget:
    """How many bytes of features this machine may hold in memory and write to disk."""

    memory_bytes: int
    disk_bytes: int  # for one case's shards
    from_free_space: bool = False  # the disk budget is a share of the free space, so writing shrinks it

    @classmethod
    def of_this_machine(cls) -> Budget:
        """Half of RAM and half the free space of the cache's disk, unless the environment says otherwise."""
        memory = _gib_from_environment("MECL_FEATURE_MEMORY_GIB")
        disk = _gib_from_environment("MECL_FEATURE_DISK_GIB")
        if memory is None:
            memory = int(psutil.virtual_memory().total * BUDGET_SHARE)
        measured = disk is None
        if measured:
            folder = cache_dir()
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            disk = int(shutil.disk_usage(folder).free * BUDGET_SHARE)
        return cls(memory, disk, measured)

    def after_writing(self, stored_bytes: int) -> Budget:
        """The budget once ``stored_bytes`` more are on the disk (a fixed budget stays as it is)."""
        if not self.from_free_space:
            return self
        return Budget(self.memory_bytes, self.disk_bytes - int(stored_bytes * BUDGET_SHARE), True)

    def describe(self) -> str:
        disk = "half the free space now" if self.from_free_space else "set"
        return (
            f"a case's features in memory up to {self.memory_bytes / 2**30:.1f} GiB, on disk up to "
            f"{self.disk_bytes / 2**30:.1f} GiB ({disk}; MECL_FEATURE_MEMORY_GIB, MECL_FEATURE_DISK_GIB)"
        )


def _gib_from_environment(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:
        raise ValueError(
            f"{name}={text!r} is not a number of GiB: set it to e.g. 8 or 0.5, or unset it for half of "
            "this machine's memory (or of the cache disk's free space)."
        )
    return int(value * 2**30)


def feature_bytes(images: int, feature_shape: Sequence[int]) -> int:
    """float32 bytes of ``images`` feature maps of ``feature_shape``."""
    return images * math.prod(feature_shape) * 4


def choose_mode(
    profile: Profile,
    network: str,
    layer: str,
    float32_bytes: int,
    budget: Budget,
    *,
    data: Callable[[], tuple[Dataset, Splits]],
) -> str:
    """Where the branch inputs at ``network``'s ``layer`` live: what ``run`` uses and ``plan`` shows.

    The profile's ``feature_mode``, or for "auto" the first mode whose ``float32_bytes`` fit: memory, then
    float16 shards, then none (the cut backbone). Shards already complete for the layer
    (``feature_shards.shards_complete``, of the backbone the profile trains on ``data()``'s data set and
    splits) are kept even if the disk has since filled up, so that a resumed grid trains the same runs it
    started with. ``data`` is called only for that question, and only when the cache holds a manifest of
    the layer at all (``any_complete_shards``): the plan loads no data set otherwise.
    """
    mode = _by_size(float32_bytes, budget, profile.feature_mode)
    if mode == "backbone" and profile.feature_mode == "auto" and any_complete_shards(network, layer):
        dataset, splits = data()
        key = backbone_key(profile, network, dataset, splits, seed=profile.seed)
        if shards_complete(key, network, dataset, splits, layer):
            return "shards"
    return mode


def _by_size(float32_bytes: int, budget: Budget, requested: str) -> str:
    """``requested``, or for "auto" the first mode whose bytes fit: memory, then float16 shards, then none."""
    if requested != "auto":
        return requested
    if float32_bytes <= budget.memory_bytes:
        return "memory"
    if float32_bytes // 2 <= budget.disk_bytes:
        return "shards"
    return "backbone"


def identity(mode: str):
    """What a run's identity records of its features: memory mode keeps the version alone, as before modes."""
    if mode == "memory":
        return FEATURES_VERSION
    precision = "float16" if mode == "shards" else "float32"
    return {"version": FEATURES_VERSION, "mode": mode, "precision": precision}


def cut_backbone(classifier: keras.Model, layer: str) -> keras.Model:
    """``classifier`` from its input to ``layer``'s output, as a frozen model of its own.

    Only the layers a branch at ``layer`` reads through are built, with their trained weights; nothing after
    ``layer`` is kept, so the rest of the network can be freed.
    """
    part = keras.Model(classifier.inputs, get_layer(classifier, layer).output)
    cut = keras.models.clone_model(part)
    cut.set_weights(part.get_weights())
    cut.trainable = False
    return cut
