"""Tests for cache: content keys, array and model entries, atomic writes, corrupt-file recovery."""

from pathlib import Path

import keras
import numpy as np
import pytest

from mecl_utils import cache
from mecl_utils.cache import cache_dir, cache_key, cached_arrays, cached_model, dataset_fingerprint
from mecl_utils.networks.backbones import build_tiny_cnn
from mecl_utils.networks.data import Dataset

PARTS = {"network": "tiny_cnn", "epochs": 1, "lr": 0.01, "sizes": (150, 150), "pretrained": False}


class Counter:
    """A compute/train function that counts its calls."""

    def __init__(self, make):
        self.make, self.calls = make, 0

    def __call__(self):
        self.calls += 1
        return self.make()


def arrays():
    return {"losses": np.array([0.5, 1.5, 2.5]), "index": np.arange(3)}


def tiny_model():
    keras.utils.set_random_seed(0)
    return build_tiny_cnn(10)


def tiny_dataset(x_train):
    y = np.array([0, 1])
    return Dataset("digits", x_train, y, np.zeros((2, 8, 8, 1), np.uint8), y, ("0", "1"), "test")


def test_cache_dir_prefers_mecl_cache_dir_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path / "mecl"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mecl"
    monkeypatch.delenv("MECL_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "mecl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "mecl"


def test_cache_key_is_stable_and_ignores_key_order():
    reordered = dict(reversed(list(PARTS.items())))
    assert cache_key(PARTS) == cache_key(dict(PARTS)) == cache_key(reordered)
    assert len(cache_key(PARTS)) == 20


def test_cache_key_treats_tuples_as_lists_and_numpy_scalars_as_numbers():
    assert cache_key({**PARTS, "sizes": [150, 150]}) == cache_key(PARTS)
    assert cache_key({**PARTS, "epochs": np.int64(1)}) == cache_key(PARTS)


@pytest.mark.parametrize("change", [{"epochs": 2}, {"lr": 0.010000001}, {"epochs": 1.0}, {"sizes": (150,)}])
def test_cache_key_changes_with_any_value(change):
    assert cache_key({**PARTS, **change}) != cache_key(PARTS)


def test_cache_key_rejects_values_without_json_form_naming_the_key():
    with pytest.raises(TypeError, match="'weights'"):
        cache_key({**PARTS, "weights": Path("a.h5")})


def test_arrays_round_trip(tmp_path):
    loaded = cached_arrays("scores", PARTS, arrays, root=tmp_path)
    reloaded = cached_arrays("scores", PARTS, arrays, root=tmp_path)
    for result in (loaded, reloaded):
        assert sorted(result) == ["index", "losses"]
        np.testing.assert_array_equal(result["losses"], [0.5, 1.5, 2.5])
        assert result["index"].dtype == np.arange(3).dtype


def test_compute_runs_once_then_entry_is_served_from_disk(tmp_path):
    compute = Counter(arrays)
    cached_arrays("scores", PARTS, compute, root=tmp_path)
    cached_arrays("scores", PARTS, compute, root=tmp_path)
    cached_arrays("scores", {**PARTS, "epochs": 2}, compute, root=tmp_path)
    assert compute.calls == 2
    assert (tmp_path / "scores" / f"{cache_key(PARTS)}.json").is_file()  # the human-readable sidecar


def test_sidecar_records_when_and_how_long_the_computation_ran(tmp_path):
    import json
    import time

    def slow():
        time.sleep(0.05)
        return arrays()

    before = time.time()
    cached_arrays("scores", PARTS, slow, root=tmp_path)
    sidecar = json.loads((tmp_path / "scores" / f"{cache_key(PARTS)}.json").read_text())
    assert sidecar["seconds"] >= 0.05 and before <= sidecar["started"] <= time.time()


def test_cached_arrays_uses_mecl_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    cached_arrays("scores", PARTS, arrays)
    assert (tmp_path / "scores" / f"{cache_key(PARTS)}.npz").is_file()


def test_truncated_npz_is_reported_and_rebuilt(tmp_path):
    cached_arrays("scores", PARTS, arrays, root=tmp_path)
    path = tmp_path / "scores" / f"{cache_key(PARTS)}.npz"
    path.write_bytes(path.read_bytes()[:100])
    compute = Counter(arrays)
    with pytest.warns(UserWarning, match=path.name):
        result = cached_arrays("scores", PARTS, compute, root=tmp_path)
    assert compute.calls == 1
    np.testing.assert_array_equal(result["losses"], [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(np.load(path)["losses"], [0.5, 1.5, 2.5])


def test_npz_missing_an_array_is_rebuilt(tmp_path):
    cached_arrays("scores", PARTS, arrays, root=tmp_path)
    path = tmp_path / "scores" / f"{cache_key(PARTS)}.npz"
    with open(path, "wb") as f:
        np.savez(f, losses=np.zeros(3))  # "index" is gone
    compute = Counter(arrays)
    with pytest.warns(UserWarning, match="index"):
        cached_arrays("scores", PARTS, compute, root=tmp_path)
    assert compute.calls == 1


def test_write_leaves_no_temporary_files(tmp_path):
    cached_arrays("scores", PARTS, arrays, root=tmp_path)
    key = cache_key(PARTS)
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == [f"{key}.json", f"{key}.npz"]


def test_failed_write_leaves_no_entry_and_no_temporary_file(monkeypatch, tmp_path):
    def broken_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        cached_arrays("scores", PARTS, arrays, root=tmp_path)
    assert [p.name for p in (tmp_path / "scores").iterdir()] == [f"{cache_key(PARTS)}.json"]


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        cached_arrays("scores", PARTS, lambda: {"names": np.array(["a", None])}, root=tmp_path)


def test_model_round_trip_gives_identical_predictions(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1)).astype(np.float32)
    trained = cached_model("classifier", PARTS, tiny_model, root=tmp_path)
    train = Counter(tiny_model)
    loaded = cached_model("classifier", PARTS, train, root=tmp_path)
    assert train.calls == 0
    assert loaded is not trained
    np.testing.assert_allclose(loaded.predict(x, verbose=0), trained.predict(x, verbose=0), rtol=1e-6)
    key = cache_key(PARTS)
    assert sorted(p.name for p in (tmp_path / "classifier").iterdir()) == [f"{key}.json", f"{key}.keras"]


def test_truncated_keras_file_is_reported_and_retrained(tmp_path):
    cached_model("classifier", PARTS, tiny_model, root=tmp_path)
    path = tmp_path / "classifier" / f"{cache_key(PARTS)}.keras"
    path.write_bytes(path.read_bytes()[:200])
    train = Counter(tiny_model)
    with pytest.warns(UserWarning, match=path.name):
        model = cached_model("classifier", PARTS, train, root=tmp_path)
    assert train.calls == 1
    assert isinstance(model, keras.Model)
    assert keras.saving.load_model(path).count_params() == model.count_params()


def test_dataset_fingerprint_follows_the_pixels():
    x = np.zeros((2, 8, 8, 1), np.uint8)
    changed = x.copy()
    changed[1, 4, 4, 0] = 1
    first = dataset_fingerprint(tiny_dataset(x))
    assert first == dataset_fingerprint(tiny_dataset(x.copy()))
    assert first != dataset_fingerprint(tiny_dataset(changed))


def test_array_fingerprint_depends_on_values_and_dtype():
    index = np.array([3, 1, 2])
    assert cache.array_fingerprint(index) == cache.array_fingerprint(index.copy())
    assert cache.array_fingerprint(index) != cache.array_fingerprint(index[::-1])
    assert cache.array_fingerprint(index) != cache.array_fingerprint(index.astype(np.int32))
