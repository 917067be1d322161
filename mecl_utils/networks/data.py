"""Data sets and splits: CIFAR-10, CIFAR-100 and a tiny offline stand-in, cut into four disjoint splits.

Implements the data side of Sec. III of Bakhtiarnia, Zhang & Iosifidis (2021): the experiments run on
CIFAR-10 and CIFAR-100, with a training set, a validation set (for reduce-on-plateau), a test set (for the
reported accuracies) and a separate hyper-parameter set (for choosing teacher, pacing function and learning
rate). Validation and hyper-parameter sets are carved, stratified, out of the official training set.

CIFAR is read from the official "python version" folders (``cifar-10-batches-py/``, ``cifar-100-python/``),
looked for in this order: the ``data_dir`` argument (else ``$MECL_DATA_DIR``), the Keras cache
(``$KERAS_HOME/datasets``, default ``~/.keras/datasets``), and finally a Keras download, which needs a
network. The pickles are read with an unpickler that only rebuilds numpy arrays, as Keras' own loader does.

``"digits"`` is scikit-learn's bundled 8×8 digits, always available offline: pixels 0..16 are scaled to
uint8 0..255 (``round(v * 255 / 16)``) and, as it has no official split, 20 % is held out as its test set
(stratified, seed 0). Images are uint8 NHWC, labels int64 1-D.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "DATASET_NAMES",
    "CorruptDataError",
    "DataNotFoundError",
    "Dataset",
    "Split",
    "Splits",
    "find_local",
    "load_dataset",
    "make_splits",
]

DATASET_NAMES = ("cifar10", "cifar100", "digits")
DIGITS_TEST_FRACTION = 0.2
OFFLINE_BUILD_HINT = "python ../shared/data/build_cifar10.py DIR"


class DataNotFoundError(FileNotFoundError):
    """No copy of the data set could be found locally nor downloaded."""


class CorruptDataError(ValueError):
    """A data file is truncated, malformed or holds something other than plain data."""


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    class_names: tuple[str, ...]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True, eq=False)
class Split:
    """Images, labels, and ``index``: their positions in the source array (for keying cached features)."""

    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    """``train``, ``val`` and ``hparam`` index ``Dataset.x_train``; ``test`` indexes ``Dataset.x_test``."""

    train: Split
    val: Split
    hparam: Split
    test: Split


@dataclass(frozen=True)
class _CifarLayout:
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    keras_cache_folders: tuple[str, ...]  # Keras 3 extracts into "<name>-target/", Keras 2 did not
    how_to_get: str

    @property
    def required_files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


_CIFAR = {
    "cifar10": _CifarLayout(
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        keras_cache_folders=("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
        how_to_get=f"build an offline copy with `{OFFLINE_BUILD_HINT}`",
    ),
    "cifar100": _CifarLayout(
        folder="cifar-100-python",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        keras_cache_folders=("cifar-100-python-target/cifar-100-python", "cifar-100-python"),
        how_to_get="extract cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html into it",
    ),
}

# The only globals a CIFAR pickle needs: numpy array reconstruction (numpy < 2 and >= 2 spellings).
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}: not plain data")


def _check_name(name: str) -> None:
    if name not in DATASET_NAMES:
        raise ValueError(f"Unknown data set {name!r}; valid names are {', '.join(DATASET_NAMES)}.")


def _user_data_dir(data_dir: str | os.PathLike | None) -> tuple[Path | None, str]:
    if data_dir is not None:
        return Path(data_dir).expanduser(), "the data_dir argument"
    from_env = os.environ.get("MECL_DATA_DIR")
    if from_env:
        return Path(from_env).expanduser(), "$MECL_DATA_DIR"
    return None, ""


def _keras_cache_folders(layout: _CifarLayout) -> list[Path]:
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    return [keras_home / "datasets" / sub for sub in layout.keras_cache_folders]


def _first_complete(candidates: list[Path], layout: _CifarLayout) -> Path | None:
    for folder in candidates:
        if all((folder / f).is_file() for f in layout.required_files):
            return folder
    return None


def find_local(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local folder ``name`` would be read from, or None if it would need a download.

    Cheap (no import of Keras, no reading of the files). A data directory named by ``data_dir`` or
    ``$MECL_DATA_DIR`` is the only place looked at when given. "digits" is bundled with scikit-learn.
    """
    _check_name(name)
    if name == "digits":
        import sklearn.datasets

        return Path(sklearn.datasets.__file__).parent / "data"
    layout = _CIFAR[name]
    user_dir, _ = _user_data_dir(data_dir)
    if user_dir is not None:
        return _first_complete([user_dir / layout.folder, user_dir], layout)
    return _first_complete(_keras_cache_folders(layout), layout)


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, *, label_mode: str = "fine"
) -> Dataset:
    """Load "cifar10", "cifar100" (``label_mode`` "fine" or "coarse") or "digits"; see the module docstring.

    CIFAR-100 with coarse labels is named "cifar100-coarse", so that caches keyed by name stay apart.
    """
    _check_name(name)
    if label_mode not in ("fine", "coarse") or (label_mode == "coarse" and name != "cifar100"):
        raise ValueError(f"label_mode={label_mode!r}: use 'fine', or 'coarse' with cifar100 only.")
    if name == "digits":
        return _load_digits()
    layout = _CIFAR[name]
    user_dir, setting = _user_data_dir(data_dir)
    if user_dir is not None:
        folder = _first_complete([user_dir / layout.folder, user_dir], layout)
        if folder is None:
            raise DataNotFoundError(
                f"No {name} files in {user_dir} (set by {setting}): looked in {user_dir / layout.folder} and "
                f"{user_dir} for {', '.join(layout.required_files)}. To fix, {layout.how_to_get}, or point "
                f"data_dir / MECL_DATA_DIR at the folder that contains {layout.folder}/."
            )
        return _read_cifar(name, folder, label_mode, source=str(folder))
    cache_folders = _keras_cache_folders(layout)
    folder = _first_complete(cache_folders, layout)
    if folder is not None:
        return _read_cifar(name, folder, label_mode, source=str(folder))
    try:
        _download_with_keras(name, label_mode)
    except Exception as err:  # Keras raises a bare Exception when offline
        raise DataNotFoundError(
            f"Could not find {name}: no data_dir argument or MECL_DATA_DIR, nothing in the Keras cache "
            f"({', '.join(map(str, cache_folders))}), and the Keras download failed ({err}). To fix, "
            f"{layout.how_to_get}, then pass data_dir=DIR or set MECL_DATA_DIR=DIR; or go online."
        ) from err
    folder = _first_complete(cache_folders, layout)
    if folder is None:
        raise DataNotFoundError(
            f"The Keras download of {name} succeeded but left no {layout.folder}/ in "
            f"{', '.join(map(str, cache_folders))}. To fix, pass data_dir=DIR pointing at a copy of it."
        )
    return _read_cifar(name, folder, label_mode, source=f"keras download ({folder})")


def _download_with_keras(name: str, label_mode: str) -> None:
    import keras  # heavy (imports the backend), so only when a download is needed

    if name == "cifar10":
        keras.datasets.cifar10.load_data()
    else:
        keras.datasets.cifar100.load_data(label_mode=label_mode)


def _unpickle(path: Path) -> dict:
    rebuild = f"Rebuild or re-download it (CIFAR-10 offline: `{OFFLINE_BUILD_HINT}`)."
    try:
        with open(path, "rb") as f:
            content = _PlainDataUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise CorruptDataError(f"Cannot read {path}: {err}. {rebuild}") from err
    if not isinstance(content, dict):
        raise CorruptDataError(f"{path} holds a {type(content).__name__}, not a CIFAR dict. {rebuild}")
    return content


def _entry(content: dict, key: bytes, path: Path):
    if key not in content:
        raise CorruptDataError(f"{path} has no {key!r} entry; is it a CIFAR file? Rebuild or re-download it.")
    return content[key]


def _read_images_and_labels(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    content = _unpickle(path)
    pixels = np.asarray(_entry(content, b"data", path))
    labels = np.asarray(_entry(content, label_key, path), dtype=np.int64).reshape(-1)
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32:
        raise CorruptDataError(f"{path}: data is {pixels.dtype} {pixels.shape}, expected uint8 N×3072.")
    if len(labels) != len(pixels):
        raise CorruptDataError(f"{path}: {len(pixels)} images but {len(labels)} labels.")
    # Rows are R|G|B planes of 32×32, row-major: to N×3×32×32, then channels last.
    return pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _read_cifar(name: str, folder: Path, label_mode: str, *, source: str) -> Dataset:
    layout = _CIFAR[name]
    if name == "cifar10":
        label_key, names_key = b"labels", b"label_names"
    else:
        label_key, names_key = f"{label_mode}_labels".encode(), f"{label_mode}_label_names".encode()
    train = [_read_images_and_labels(folder / f, label_key) for f in layout.train_files]
    x_test, y_test = _read_images_and_labels(folder / layout.test_file, label_key)
    meta_path = folder / layout.meta_file
    class_names = tuple(n.decode() for n in _entry(_unpickle(meta_path), names_key, meta_path))
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    for labels in (y_train, y_test):
        if labels.min() < 0 or labels.max() >= len(class_names):
            raise CorruptDataError(f"{folder}: labels outside 0..{len(class_names) - 1}; rebuild it.")
    dataset_name = "cifar100-coarse" if label_mode == "coarse" else name
    return Dataset(dataset_name, x_train, y_train, x_test, y_test, class_names, source)


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., np.newaxis]
    labels = digits.target.astype(np.int64)
    n_test = round(DIGITS_TEST_FRACTION * len(labels))
    test, train = _stratified_take(labels, np.arange(len(labels)), n_test, np.random.default_rng(0))
    names = tuple(str(d) for d in range(10))
    return Dataset(
        "digits", images[train], labels[train], images[test], labels[test], names, "scikit-learn digits"
    )


def _stratified_take(
    labels: np.ndarray, pool: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``pool`` (indices into ``labels``) into ``size`` taken and the rest, both sorted.

    Each class gets its proportional share of ``size`` rounded down, and the leftover places go to the
    classes with the largest remainders (ties broken at random), so counts are within 1 of proportional.
    """
    classes, counts = np.unique(labels[pool], return_counts=True)
    shares = size * counts / len(pool)
    quota = np.floor(shares).astype(int)
    leftover = size - quota.sum()
    order = np.lexsort((rng.random(len(classes)), -(shares - quota)))
    quota[order[:leftover]] += 1
    taken = [
        rng.choice(pool[labels[pool] == c], q, replace=False) for c, q in zip(classes, quota, strict=True)
    ]
    taken_index = np.sort(np.concatenate(taken))
    return taken_index, np.setdiff1d(pool, taken_index)


def make_splits(
    dataset: Dataset,
    *,
    seed: int,
    n_val: int,
    n_hparam: int,
    n_train: int | None = None,
    n_test: int | None = None,
) -> Splits:
    """Carve stratified, disjoint val and hparam sets out of the training set; train is the rest.

    ``n_train`` and ``n_test`` optionally subsample (stratified) the rest and the official test set, for the
    CPU-scale profiles. Deterministic for a given ``seed``; indices come sorted, so shuffle when training.
    """
    n_pool, n_official_test, k = len(dataset.y_train), len(dataset.y_test), dataset.num_classes
    n_rest = n_pool - n_val - n_hparam
    sizes = {"n_val": n_val, "n_hparam": n_hparam, "n_train": n_train if n_train is not None else n_rest}
    if n_test is not None:
        sizes["n_test"] = n_test
    if n_val + n_hparam + (n_train or 0) > n_pool:
        raise ValueError(
            f"{dataset.name}: n_val={n_val} + n_hparam={n_hparam} + n_train={n_train} exceeds its {n_pool} "
            "training images; reduce the sizes."
        )
    too_small = {key: value for key, value in sizes.items() if value < k}
    if too_small:
        raise ValueError(
            f"{dataset.name}: sizes {too_small} are smaller than its {k} classes (with n_val={n_val}, "
            f"n_hparam={n_hparam} out of {n_pool} training images); each split needs every class."
        )
    if n_test is not None and n_test > n_official_test:
        raise ValueError(f"{dataset.name}: n_test={n_test} exceeds its {n_official_test} test images.")
    rng = np.random.default_rng(seed)
    val_index, rest = _stratified_take(dataset.y_train, np.arange(n_pool), n_val, rng)
    hparam_index, rest = _stratified_take(dataset.y_train, rest, n_hparam, rng)
    train_index = (
        rest if n_train in (None, len(rest)) else _stratified_take(dataset.y_train, rest, n_train, rng)[0]
    )
    test_index = np.arange(n_official_test)
    if n_test is not None and n_test < n_official_test:
        test_index = _stratified_take(dataset.y_test, test_index, n_test, rng)[0]

    def train_split(index: np.ndarray) -> Split:
        return Split(dataset.x_train[index], dataset.y_train[index], index)

    return Splits(
        train=train_split(train_index),
        val=train_split(val_index),
        hparam=train_split(hparam_index),
        test=Split(dataset.x_test[test_index], dataset.y_test[test_index], test_index),
    )
