"""Features that fit: a case's branch inputs in memory, as float16 shards on disk, or from the cut backbone.

Classifier-wise training (Sec. II-A, III) feeds each branch the frozen backbone's activations at its
layer. The smoke and book profiles hold them in memory (``features.cached_features``). At the paper's native
input sizes they do not fit: ResNet152's ``conv3_block1_out`` is 64 GB for the training images alone
(``python -m mecl_utils plan``). ``choose_mode`` picks, per case, from the float32 size of all its splits:

- ``memory``: float32 arrays in RAM, while they take at most the memory budget (half of RAM);
- ``shards``: float16 ``.npy`` shards on disk, half the bytes, while they take at most the disk budget (half
  the cache disk's free space). They are memory-mapped and gathered batch by batch inside the ``tf.data``
  pipeline (``ShardedFeatures``), so RAM holds a batch, not a split;
- ``backbone``: nothing is stored. The backbone cut at the branch layer (``cut_backbone``) runs frozen inside
  the training graph, and every branch run pays its forward passes: the mode for a GPU.

Shards are written one at a time and atomically. An interrupted extraction resumes at the first missing
shard, and a shard that does not read back is computed again. The float16 copy changes what a branch reads,
so the mode enters each run's identity (``identity``), and result rows record it. ``MECL_FEATURE_MEMORY_GIB``
and ``MECL_FEATURE_DISK_GIB`` replace the budgets; a profile's ``feature_mode`` forces one mode.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import psutil
from tqdm.auto import tqdm

from mecl_utils.cache import (
    array_fingerprint,
    atomic_write,
    cache_dir,
    cache_key,
    cache_path,
    dataset_fingerprint,
)
from mecl_utils.networks.backbones import get_layer
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.features import FEATURES_VERSION, SPLIT_NAMES, extract_features
from mecl_utils.protocol.profiles import FEATURE_MODES

__all__ = [
    "FEATURE_MODES",
    "Budget",
    "ShardedFeatures",
    "cached_feature_shards",
    "choose_mode",
    "cut_backbone",
    "feature_bytes",
    "identity",
    "shards_complete",
]

SHARDS_VERSION = 1
SHARD_ROWS = 1024  # images per shard: what an interrupted extraction can lose
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


def choose_mode(float32_bytes: int, budget: Budget, requested: str = "auto") -> str:
    """``requested``, or for "auto" the first mode whose bytes fit: memory, then float16 shards, then none."""
    if requested not in ("auto", *FEATURE_MODES):
        raise ValueError(f"feature_mode must be 'auto' or one of {FEATURE_MODES}, got {requested!r}")
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


class ShardedFeatures:
    """One split's features at one layer: float16 shards in ``folder``, read as float32 rows on demand.

    ``len`` and ``shape`` read no rows; ``gather(rows)`` reads only those rows (the shards are
    memory-mapped), ``tf_gather`` does so inside a ``tf.data`` pipeline, and ``dataset`` streams every row
    in order. It pickles as its folder, so a Ray task opens the same files: on a cluster ``MECL_CACHE_DIR``
    must be a folder every node shares.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        manifest = _read_manifest(self.folder)
        if manifest is None:
            raise FileNotFoundError(
                f"{self.folder} holds no complete feature shards: run the case again to write them."
            )
        self.rows, self.row_shape = manifest["rows"], tuple(manifest["shape"])
        self.shard_rows = manifest["shard_rows"]
        self._maps: list[np.ndarray] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.rows, *self.row_shape)

    @property
    def nbytes(self) -> int:
        """The bytes of the shards on disk (float16)."""
        return self.rows * math.prod(self.row_shape) * 2

    def __len__(self) -> int:
        return self.rows

    def __repr__(self) -> str:
        return f"ShardedFeatures({str(self.folder)!r}, shape={self.shape})"

    def __getstate__(self) -> dict:
        return {"folder": str(self.folder)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["folder"])

    def _shards(self) -> list[np.ndarray]:
        if self._maps is None:
            count = math.ceil(self.rows / self.shard_rows)
            self._maps = [np.load(_shard_file(self.folder, k), mmap_mode="r") for k in range(count)]
        return self._maps

    def gather(self, rows) -> np.ndarray:
        """The float16 features of ``rows`` (integer positions), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        shard, offset = np.divmod(rows, self.shard_rows)
        out = np.empty((len(rows), *self.row_shape), dtype=np.float16)
        maps = self._shards()
        for number in np.unique(shard):
            where = shard == number
            out[where] = maps[number][offset[where]]
        return out

    def tf_gather(self, rows):
        """``gather`` as a TensorFlow op returning float32, for a ``tf.data`` map."""
        import tensorflow as tf

        values = tf.numpy_function(self.gather, [rows], tf.float16, stateful=False)
        values.set_shape((None, *self.row_shape))
        return tf.cast(values, tf.float32)

    def dataset(self, labels: np.ndarray | None = None, *, batch_size: int = 32):
        """A ``tf.data.Dataset`` of consecutive batches of rows (with their ``labels`` when given)."""
        import tensorflow as tf

        n = self.rows
        starts = tf.data.Dataset.range(0, n, batch_size)
        batches = starts.map(lambda start: self.tf_gather(tf.range(start, tf.minimum(start + batch_size, n))))
        if labels is not None:
            if len(labels) != n:
                raise ValueError(f"{len(labels)} labels for {n} rows of features")
            batches = tf.data.Dataset.zip(
                batches, tf.data.Dataset.from_tensor_slices(labels).batch(batch_size)
            )
        return batches.prefetch(2)


def _shard_file(folder: Path, number: int) -> Path:
    return folder / f"{number:05d}.npy"


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def _shard_readable(path: Path, rows: int) -> bool:
    """Whether ``path`` is a float16 ``.npy`` file of ``rows`` rows (its header read, not its values)."""
    if not path.is_file():
        return False
    try:
        shard = np.load(path, mmap_mode="r")
    except Exception as err:  # truncated header, wrong magic: compute it again
        warnings.warn(f"Feature shard {path} is unreadable ({err}); computing it again.", stacklevel=3)
        return False
    return shard.dtype == np.float16 and len(shard) == rows


def _shard_folders(
    classifier_parts_key: str, network: str, dataset: Dataset, splits: Splits, layer_names: Sequence[str]
) -> dict[str, tuple[dict, dict[str, Path]]]:
    """{split name: (its key parts, {layer: shard folder})}: where ``cached_feature_shards`` writes."""
    common = {
        "version": SHARDS_VERSION,
        "features_version": FEATURES_VERSION,
        "classifier": classifier_parts_key,
        "network": network,
        "dataset_fingerprint": dataset_fingerprint(dataset),
        "precision": "float16",
        "shard_rows": SHARD_ROWS,
    }
    folders = {}
    for split_name in SPLIT_NAMES:
        parts = {
            **common,
            "split": split_name,
            "split_index": array_fingerprint(getattr(splits, split_name).index),
        }
        folders[split_name] = (
            parts,
            {
                layer: cache_path("feature_shards", cache_key({**parts, "layer": layer}), "")
                for layer in layer_names
            },
        )
    return folders


def shards_complete(
    classifier_parts_key: str, network: str, dataset: Dataset, splits: Splits, layer: str
) -> bool:
    """Whether every split's shards at ``layer`` are written (a resumed grid then keeps its mode)."""
    folders = _shard_folders(classifier_parts_key, network, dataset, splits, [layer])
    return all(_read_manifest(by_layer[layer]) is not None for _, by_layer in folders.values())


def cached_feature_shards(
    classifier: keras.Model,
    classifier_parts_key: str,
    network: str,
    dataset: Dataset,
    splits: Splits,
    layer_names: Sequence[str],
    *,
    verbose: bool = False,
) -> dict[str, dict[str, ShardedFeatures]]:
    """{split name: {layer name: ShardedFeatures}}, writing whatever shards are missing.

    One pass of ``classifier`` per shard of images computes every layer of ``layer_names``, as
    ``cached_features`` does for whole splits; the shards live in ``<cache>/feature_shards/<key>/``.
    """
    result: dict[str, dict[str, ShardedFeatures]] = {}
    for split_name, (parts, folders) in _shard_folders(
        classifier_parts_key, network, dataset, splits, layer_names
    ).items():
        x = getattr(splits, split_name).x
        _write_missing_shards(classifier, x, folders, parts, verbose=verbose, description=split_name)
        result[split_name] = {layer: ShardedFeatures(folder) for layer, folder in folders.items()}
    return result


def _write_missing_shards(
    classifier: keras.Model,
    x: np.ndarray,
    folders: dict[str, Path],
    parts: dict,
    *,
    verbose: bool,
    description: str,
) -> None:
    count = math.ceil(len(x) / SHARD_ROWS)
    rows = [min(SHARD_ROWS, len(x) - k * SHARD_ROWS) for k in range(count)]
    manifests = {layer: _read_manifest(folder) for layer, folder in folders.items()}
    # Shards without a manifest are an interrupted extraction's: kept, and only the rest computed.
    missing = [
        k
        for k in range(count)
        if not all(_shard_readable(_shard_file(folder, k), rows[k]) for folder in folders.values())
    ]
    shapes = {}
    for k in tqdm(missing, desc=f"{description} shards", unit="shard", disable=not verbose):
        start = k * SHARD_ROWS
        values = extract_features(classifier, list(folders), x[start : start + rows[k]])
        for layer, folder in folders.items():
            shapes[layer] = values[layer].shape[1:]
            half = values[layer].astype(np.float16)

            def save(tmp: Path, half=half) -> None:
                with open(tmp, "wb") as f:
                    np.save(f, half)

            atomic_write(_shard_file(folder, k), save, suffix=".npy")
    for layer, folder in folders.items():
        if manifests[layer] is not None and not missing:
            continue
        shape = shapes.get(layer) or np.load(_shard_file(folder, 0), mmap_mode="r").shape[1:]
        manifest = {"rows": len(x), "shape": list(shape), "shard_rows": SHARD_ROWS, "parts": parts}
        text = json.dumps({**manifest, "layer": layer}, indent=2, sort_keys=True, default=str)
        atomic_write(
            folder / "manifest.json", lambda tmp, text=text: tmp.write_text(text + "\n"), suffix=".json"
        )
