"""Shared fixtures: one smoke-profile cache per session, the book built once from it, a fit counter.

The smoke protocol (networks, features, 32 branch runs) is the slowest thing the suite does; the CLI test
and the book build share one cache directory, so whichever runs first trains and the other reuses it.
"""

from pathlib import Path

import pytest

from mecl_utils import quiet

quiet.install()  # before keras imports TensorFlow, in the controller and in each pytest-xdist worker

import keras  # noqa: E402

# The session fixtures that train the smoke grid and build the book: every test using one runs on the
# same pytest-xdist worker, so that both happen once per suite.
SHARED_SMOKE_FIXTURES = {"smoke_cache", "built_book"}
# The groups that take longest (``--durations``: the smoke group about 590 s, the miniature paper grid
# about 250 s, everything else under 90 s a group), queued first so that the two workers end together.
# pytest-xdist would otherwise queue groups by their number of tests (``make test`` turns that off with
# --no-loadscope-reorder): the one-test miniature grid came last and ran alone for four minutes.
LONGEST_GROUPS = ("smoke", "test_paper_miniature")


def xdist_group(item) -> str:
    shares_smoke = SHARED_SMOKE_FIXTURES & set(item.fixturenames)
    return "smoke" if shares_smoke else item.module.__name__


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """Groups for ``make test``'s ``-n 2 --dist loadgroup``: a module's tests run on one worker (its module
    fixtures are built once), and the tests sharing the smoke cache or the book on one worker too. The
    longest groups come first, the rest keep their order."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
    rank = {group: index for index, group in enumerate(LONGEST_GROUPS)}
    items.sort(key=lambda item: rank.get(xdist_group(item), len(rank)))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """No test writes to the user's cache: a test that needs a cache of its own sets MECL_CACHE_DIR."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MECL_CACHE_DIR", str(tmp_path_factory.mktemp("default-cache")))
        yield


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
    from mecl_utils.book.build import build_book

    out = tmp_path_factory.mktemp("book")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MECL_CACHE_DIR", str(smoke_cache))
        return build_book(profile="smoke", out_dir=out)


@pytest.fixture(scope="session")
def smoke_digits():
    """Digits and its splits at the smoke profile's sizes and seed (what the smoke networks train on)."""
    from mecl_utils.protocol.profiles import get_profile
    from mecl_utils.run.case_networks import load_splits

    return load_splits(get_profile("smoke"), "digits")
