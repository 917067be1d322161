"""Shared fixtures: one smoke-profile cache per session, the book built once from it, a fit counter.

The smoke protocol (networks, features, 32 branch runs) is the slowest thing the suite does; the CLI test
and the book build share one cache directory, so whichever runs first trains and the other reuses it.
"""

from pathlib import Path

import keras
import pytest


@pytest.fixture
def count_fits(monkeypatch):
    """Counts calls of keras.Model.fit (training happened) without changing what they do."""
    calls = []
    fit = keras.Model.fit

    def counting_fit(self, *args, **kwargs):
        calls.append(self.name)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", counting_fit)
    return calls


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("smoke-cache")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory, smoke_cache) -> Path:
    """The HTML folder of the whole book built with the smoke profile."""
    from mecl_utils.book import build_book

    out = tmp_path_factory.mktemp("book")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MECL_CACHE_DIR", str(smoke_cache))
        return build_book(profile="smoke", out_dir=out)


@pytest.fixture(scope="session")
def smoke_digits():
    """Digits and its splits at the smoke profile's sizes and seed (what the smoke networks train on)."""
    from mecl_utils.data import load_dataset, make_splits
    from mecl_utils.profiles import get_profile

    profile = get_profile("smoke")
    dataset = load_dataset("digits")
    return dataset, make_splits(dataset, seed=profile.seed, n_val=profile.n_val, n_hparam=profile.n_hparam)
