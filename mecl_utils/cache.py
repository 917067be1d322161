"""On-disk cache keyed by content: trained models, teacher losses and backbone features are computed once.

Supports the experimental protocol of Sec. III of Bakhtiarnia, Zhang & Iosifidis (2021), where one backbone
and its teachers serve a whole grid of branch trainings (optimizers × learning rates × pacings × repetitions):
what does not change between grid points is computed once and read back from disk.

An entry lives at ``<root>/<kind>/<key>.npz`` (arrays) or ``<key>.keras`` (a Keras model), next to a
``<key>.json`` sidecar holding the human-readable parts of the key, for people browsing the cache, and when
its computation started and how many seconds it took (``benchmarks/book_build.py`` reads them as stage
timings). The key is a hash of those parts (``cache_key``), so changing any setting, or the data
(``dataset_fingerprint``), gives a new entry instead of a stale one. Writes are atomic (a temporary file in
the same folder, then ``os.replace``), and an unreadable entry is reported with a warning and rebuilt.
Arrays are never pickled.

The root is ``$MECL_CACHE_DIR``, else ``$XDG_CACHE_HOME/mecl``, else ``~/.cache/mecl``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np

__all__ = [
    "array_fingerprint",
    "atomic_write",
    "cache_dir",
    "cache_key",
    "cache_path",
    "cached_arrays",
    "cached_model",
    "dataset_fingerprint",
]

KEY_LENGTH = 20
_fingerprints: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cache_dir() -> Path:
    """``$MECL_CACHE_DIR``, else ``$XDG_CACHE_HOME/mecl``, else ``~/.cache/mecl`` (not created here)."""
    if os.environ.get("MECL_CACHE_DIR"):
        return Path(os.environ["MECL_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "mecl"
    return Path.home() / ".cache" / "mecl"


def _canonical(value, key: str):
    """``value`` as plain JSON types: tuples become lists, numpy scalars Python numbers, floats their repr."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # repr is the shortest text that round-trips, so 0.1 and 0.1000000001 never share a key.
        return {"float": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(item, key) for item in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"cache key part {key!r}: nested dict keys must be strings, got {list(value)}")
        return {k: _canonical(v, f"{key}.{k}") for k, v in value.items()}
    raise TypeError(
        f"cache key part {key!r} is a {type(value).__name__}, which has no canonical JSON form: pass a str, "
        "int, float, bool, None, or a list/tuple/dict of those (e.g. str(path) or a fingerprint string)."
    )


def _canonical_json(parts: Mapping) -> str:
    if not isinstance(parts, Mapping) or not all(isinstance(k, str) for k in parts):
        raise TypeError(f"cache key parts must be a dict with string keys, got {parts!r:.80}")
    canonical = {key: _canonical(value, key) for key, value in parts.items()}
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cache_key(parts: Mapping) -> str:
    """The first 20 hex digits of the sha256 of ``parts`` as canonical JSON (key order does not matter)."""
    return hashlib.sha256(_canonical_json(parts).encode()).hexdigest()[:KEY_LENGTH]


def cache_path(kind: str, key: str, suffix: str, *, root: str | os.PathLike | None = None) -> Path:
    """Where the entry ``key`` of ``kind`` lives: ``<root>/<kind>/<key><suffix>``."""
    if not kind or os.sep in kind or kind.startswith("."):
        raise ValueError(f"cache kind must be a plain folder name like 'features', got {kind!r}")
    return Path(root if root is not None else cache_dir()) / kind / f"{key}{suffix}"


def dataset_fingerprint(dataset) -> str:
    """sha256 (hex) over a ``data.Dataset``'s name, classes, array shapes/dtypes and bytes; memoized."""
    if dataset in _fingerprints:
        return _fingerprints[dataset]
    digest = hashlib.sha256(f"{dataset.name}|{list(dataset.class_names)}".encode())
    for field in ("x_train", "y_train", "x_test", "y_test"):
        array = np.ascontiguousarray(getattr(dataset, field))
        digest.update(f"|{field}:{array.dtype.str}:{array.shape}|".encode())
        digest.update(memoryview(array).cast("B"))
    _fingerprints[dataset] = digest.hexdigest()
    return _fingerprints[dataset]


def array_fingerprint(array: np.ndarray) -> str:
    """The first 20 hex digits of the sha256 of an array's dtype, shape and bytes (e.g. a split's indices)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}:{array.shape}|".encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:KEY_LENGTH]


def atomic_write(path: Path, write: Callable[[Path], None], *, suffix: str) -> None:
    """``write(temporary path)`` in ``path``'s folder, then rename it to ``path``; no leftover on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_sidecar(kind: str, key: str, parts: Mapping, path: Path, **extra) -> None:
    record = {"kind": kind, "key": key, "parts": json.loads(_canonical_json(parts)), **extra}
    text = json.dumps(record, indent=2, sort_keys=True)
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(text + "\n"), suffix=".json")


def _expected_arrays(path: Path) -> list[str] | None:
    try:
        return json.loads(path.with_suffix(".json").read_text())["arrays"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _rebuild_warning(path: Path, err: BaseException) -> None:
    warnings.warn(
        f"Cache entry {path} is unreadable ({type(err).__name__}: {err}); rebuilding it.", stacklevel=3
    )


def cached_arrays(
    kind: str,
    parts: Mapping,
    compute: Callable[[], Mapping[str, np.ndarray]],
    *,
    root: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """The arrays cached under ``parts``, else ``compute()``'s, written to ``<root>/<kind>/<key>.npz``."""
    key = cache_key(parts)
    path = cache_path(kind, key, ".npz", root=root)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            expected = _expected_arrays(path)
            if expected is not None and sorted(expected) != sorted(arrays):
                raise KeyError(f"holds arrays {sorted(arrays)}, its sidecar lists {sorted(expected)}")
            return arrays
        except Exception as err:  # any failure to read means: recompute (zip, zlib, format errors alike)
            _rebuild_warning(path, err)
    started, start = time.time(), time.perf_counter()
    computed = compute()
    seconds = round(time.perf_counter() - start, 2)
    if not isinstance(computed, Mapping) or not computed:
        raise TypeError(
            f"compute() for {kind!r} must return a non-empty dict of arrays, got {computed!r:.60}"
        )
    arrays = {str(name): np.asarray(value) for name, value in computed.items()}
    objects = [name for name, value in arrays.items() if value.dtype == object]
    if objects:
        raise TypeError(f"arrays {objects} have dtype object, which the cache will not pickle: use numbers.")
    _write_sidecar(kind, key, parts, path, arrays=sorted(arrays), started=started, seconds=seconds)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object, so numpy does not append ".npz" to the name
            np.savez(f, **arrays)

    atomic_write(path, save, suffix=".npz")
    return arrays


def cached_model(
    kind: str,
    parts: Mapping,
    train: Callable[[], keras.Model],
    *,
    root: str | os.PathLike | None = None,
) -> keras.Model:
    """The Keras model cached under ``parts``, else ``train()``'s, saved to ``<root>/<kind>/<key>.keras``.

    A model read back from the cache is not compiled (it is only used for inference or frozen).
    """
    key = cache_key(parts)
    path = cache_path(kind, key, ".keras", root=root)
    if path.is_file():
        try:
            return keras.saving.load_model(path, compile=False)
        except Exception as err:  # truncated zip, missing weights, bad config: retrain
            _rebuild_warning(path, err)
    started, start = time.time(), time.perf_counter()
    model = train()
    seconds = round(time.perf_counter() - start, 2)
    if not isinstance(model, keras.Model):
        raise TypeError(f"train() for {kind!r} must return a keras.Model, got {type(model).__name__}")
    _write_sidecar(kind, key, parts, path, started=started, seconds=seconds)
    atomic_write(path, lambda tmp: model.save(tmp), suffix=".keras")
    return model
