"""Float16 feature shards on disk, one of the three places a branch's inputs live (``feature_modes``).

When a case's features do not fit in memory but half their bytes fit on disk, the backbone's activations at
the branch layer (Sec. II-A, III) are written as float16 ``.npy`` shards of ``SHARD_ROWS`` images, one
folder per split and layer under ``<cache>/feature_shards/<key>/``. They are memory-mapped and gathered
batch by batch inside the ``tf.data`` pipeline (``ShardedFeatures``, a ``curriculum.rows.LazyRows``), so
RAM holds a batch, not a split.

Shards are written one at a time and atomically. An interrupted extraction resumes at the first missing
shard, and a shard that does not read back is computed again; a folder counts as complete once its
manifest is written (``shards_complete``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from mecl_utils.cache import (
    array_fingerprint,
    atomic_write,
    cache_dir,
    cache_key,
    cache_path,
    dataset_fingerprint,
)
from mecl_utils.curriculum.rows import LazyRows
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.features import FEATURES_VERSION, SPLIT_NAMES, extract_features

__all__ = [
    "SHARDS_VERSION",
    "ShardedFeatures",
    "any_complete_shards",
    "cached_feature_shards",
    "shards_complete",
]

SHARDS_VERSION = 1
SHARD_ROWS = 1024  # images per shard: what an interrupted extraction can lose
KIND = "feature_shards"  # the cache folder of every shard folder


class ShardedFeatures(LazyRows):
    """One split's features at one layer: float16 shards in ``folder``, read as float32 rows on demand.

    ``len`` and ``shape`` read no rows; ``gather(rows)`` reads only those rows (the shards are
    memory-mapped), ``tf_gather`` does so inside a ``tf.data`` pipeline, and ``dataset`` (``LazyRows``)
    streams every row in order. It pickles as its folder, so a Ray task opens the same files: on a cluster
    ``MECL_CACHE_DIR`` must be a folder every node shares.
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
            {layer: cache_path(KIND, cache_key({**parts, "layer": layer}), "") for layer in layer_names},
        )
    return folders


def shards_complete(
    classifier_parts_key: str, network: str, dataset: Dataset, splits: Splits, layer: str
) -> bool:
    """Whether every split's shards at ``layer`` are written (a resumed grid then keeps its mode)."""
    folders = _shard_folders(classifier_parts_key, network, dataset, splits, [layer])
    return all(_read_manifest(by_layer[layer]) is not None for _, by_layer in folders.values())


def any_complete_shards(network: str, layer: str) -> bool:
    """Whether any split's shard folder in the cache has its manifest for ``network``'s ``layer``.

    ``shards_complete`` cannot hold without it, and it needs no data set: when it fails, a case's complete
    shards are known to be missing without loading its data.
    """
    for manifest in (cache_dir() / KIND).glob("*/manifest.json"):
        found = _read_manifest(manifest.parent) or {}
        if found.get("layer") == layer and found.get("parts", {}).get("network") == network:
            return True
    return False


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
