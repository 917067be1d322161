"""Tests for networks.data: CIFAR loading from official-format fixtures, safety, digits, and splits."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mecl_utils.networks.data import (
    CorruptDataError,
    DataNotFoundError,
    find_local,
    load_dataset,
    make_splits,
)

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def dump(path, content):
    path.write_bytes(pickle.dumps(content, protocol=3))


def write_cifar10(parent):
    """Official layout, 2 images per file; image 0 of data_batch_1 has R=200, G=50 at row 1, column 2."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b in range(1, 6):
        data = np.zeros((2, 3072), np.uint8)
        if b == 1:
            data[0, 1 * 32 + 2] = 200  # R plane
            data[0, 1024 + 1 * 32 + 2] = 50  # G plane
        dump(folder / f"data_batch_{b}", {b"data": data, b"labels": [b - 1, b + 4], b"batch_label": b"x"})
    dump(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 7]})
    dump(folder / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES]})
    return folder


def write_cifar100(parent):
    folder = parent / "cifar-100-python"
    folder.mkdir(parents=True)
    data = np.zeros((4, 3072), np.uint8)
    dump(folder / "train", {b"data": data, b"fine_labels": [0, 99, 42, 7], b"coarse_labels": [0, 19, 5, 3]})
    dump(folder / "test", {b"data": data[:2], b"fine_labels": [1, 2], b"coarse_labels": [4, 6]})
    dump(
        folder / "meta",
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
    )
    return folder


class RunsShellCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.fixture(autouse=True)
def isolated_locations(tmp_path, monkeypatch):
    monkeypatch.delenv("MECL_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.fixture
def keras_download_forbidden(monkeypatch):
    keras = pytest.importorskip("keras")

    def fail(*args, **kwargs):
        raise AssertionError("the Keras download must not be attempted")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fail)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_cifar10_shapes_dtypes_labels_and_names(tmp_path):
    write_cifar10(tmp_path)
    data = load_dataset("cifar10", tmp_path)
    assert data.x_train.shape == (10, 32, 32, 3) and data.x_test.shape == (2, 32, 32, 3)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.y_train.tolist() == [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]
    assert data.y_test.tolist() == [3, 7]
    assert data.class_names == tuple(CIFAR10_NAMES) and data.num_classes == 10


def test_cifar10_planes_become_channels_last(tmp_path):
    write_cifar10(tmp_path)
    data = load_dataset("cifar10", tmp_path)
    assert data.x_train[0, 1, 2].tolist() == [200, 50, 0]
    assert data.x_train.sum() == 250


def test_data_dir_may_be_the_batches_folder_itself(tmp_path):
    folder = write_cifar10(tmp_path)
    data = load_dataset("cifar10", folder)
    assert data.source == str(folder)


def test_mecl_data_dir_is_used_when_no_argument(tmp_path, monkeypatch):
    folder = write_cifar10(tmp_path / "mine")
    monkeypatch.setenv("MECL_DATA_DIR", str(tmp_path / "mine"))
    assert load_dataset("cifar10").source == str(folder)


def test_keras_cache_is_used_when_no_data_dir(tmp_path):
    folder = write_cifar10(tmp_path / "keras_home" / "datasets" / "cifar-10-batches-py-target")
    assert find_local("cifar10") == folder
    assert load_dataset("cifar10").source == str(folder)


def test_find_local_is_none_without_files(tmp_path):
    assert find_local("cifar10") is None
    assert find_local("cifar10", tmp_path) is None


def test_named_dir_without_files_fails_without_downloading(tmp_path, keras_download_forbidden):
    with pytest.raises(DataNotFoundError) as error:
        load_dataset("cifar10", tmp_path / "empty")
    assert str(tmp_path / "empty") in str(error.value) and "build_cifar10.py" in str(error.value)


def test_nothing_found_anywhere_lists_every_place(tmp_path, monkeypatch):
    keras = pytest.importorskip("keras")

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("cifar10")
    message = str(error.value)
    assert isinstance(error.value, DataNotFoundError)
    assert "MECL_DATA_DIR" in message and str(tmp_path / "keras_home" / "datasets") in message
    assert "URL fetch failure" in message and "build_cifar10.py" in message


def test_cifar100_fine_and_coarse_labels(tmp_path):
    write_cifar100(tmp_path)
    fine = load_dataset("cifar100", tmp_path)
    coarse = load_dataset("cifar100", tmp_path, label_mode="coarse")
    assert fine.y_train.tolist() == [0, 99, 42, 7] and fine.num_classes == 100
    assert coarse.y_train.tolist() == [0, 19, 5, 3] and coarse.num_classes == 20
    assert fine.class_names[99] == "fine99" and coarse.class_names[19] == "coarse19"
    assert fine.x_test.shape == (2, 32, 32, 3)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="cifar10, cifar100, digits"):
        load_dataset("mnist")


def test_pickle_calling_os_system_is_refused(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "marker"
    dump(folder / "data_batch_3", {b"data": RunsShellCommand(f"echo pwned > {marker}"), b"labels": [0]})
    with pytest.raises(CorruptDataError, match="data_batch_3") as error:
        load_dataset("cifar10", tmp_path)
    assert "os.system" in str(error.value) or "posix.system" in str(error.value)
    assert not marker.exists()


def test_truncated_file_is_named_with_the_fix(tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:100])
    with pytest.raises(CorruptDataError, match=r"test_batch.*Rebuild"):
        load_dataset("cifar10", tmp_path)


def test_digits_is_uint8_nhwc_with_ten_classes(digits):
    assert digits.x_train.shape[1:] == (8, 8, 1) and digits.x_train.dtype == np.uint8
    assert len(digits.y_train) + len(digits.y_test) == 1797 and len(digits.y_test) == 359
    assert digits.x_train.max() == 255 and digits.class_names == tuple("0123456789")
    assert digits.source == "scikit-learn digits"


def test_splits_are_disjoint_and_match_their_index(digits):
    splits = make_splits(digits, seed=0, n_val=100, n_hparam=150, n_train=500, n_test=200)
    train_parts = [splits.train.index, splits.val.index, splits.hparam.index]
    assert [len(part) for part in train_parts] == [500, 100, 150] and len(splits.test) == 200
    assert len(np.unique(np.concatenate(train_parts))) == 750
    assert np.array_equal(splits.val.x, digits.x_train[splits.val.index])
    assert np.array_equal(splits.test.y, digits.y_test[splits.test.index])


def test_splits_without_n_train_use_the_rest(digits):
    splits = make_splits(digits, seed=0, n_val=100, n_hparam=150)
    assert len(splits.train) == len(digits.y_train) - 250 and len(splits.test) == len(digits.y_test)


def test_splits_are_stratified(digits):
    splits = make_splits(digits, seed=3, n_val=137, n_hparam=211, n_train=500, n_test=123)
    train_share = np.bincount(digits.y_train) / len(digits.y_train)
    test_share = np.bincount(digits.y_test) / len(digits.y_test)
    for split, share in [
        (splits.train, train_share),
        (splits.val, train_share),
        (splits.hparam, train_share),
    ]:
        assert np.abs(np.bincount(split.y, minlength=10) - len(split) * share).max() <= 1
    assert np.abs(np.bincount(splits.test.y, minlength=10) - 123 * test_share).max() <= 1


def test_splits_depend_only_on_the_seed(digits):
    def draw(seed):
        return make_splits(digits, seed=seed, n_val=100, n_hparam=100, n_train=300).val.index

    assert np.array_equal(draw(7), draw(7))
    assert not np.array_equal(draw(7), draw(8))


def test_splits_larger_than_the_training_set_are_refused(digits):
    with pytest.raises(ValueError, match=r"n_train=1300.*1438"):
        make_splits(digits, seed=0, n_val=100, n_hparam=100, n_train=1300)


def test_splits_smaller_than_the_classes_are_refused(digits):
    with pytest.raises(ValueError, match=r"n_hparam.*10 classes"):
        make_splits(digits, seed=0, n_val=100, n_hparam=5)


@pytest.fixture(scope="session")
def real_cifar10(tmp_path_factory):
    script = SHARED_DATA / "build_cifar10.py"
    if not script.exists():
        pytest.skip(f"offline CIFAR-10 builder not found at {script} (only on machines with ../shared/data)")
    out = tmp_path_factory.mktemp("real_cifar10")
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    return out


@pytest.mark.slow
def test_real_cifar10_from_the_offline_copy(real_cifar10):
    data = load_dataset("cifar10", real_cifar10)
    assert data.x_train.shape == (50_000, 32, 32, 3) and data.x_test.shape == (10_000, 32, 32, 3)
    assert data.num_classes == 10 and data.class_names[0] == "airplane"
    assert np.bincount(data.y_test).tolist() == [1000] * 10
