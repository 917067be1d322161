"""Shared fixtures: the book is built once per session, for tests/test_book.py and tests/test_browser.py."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """The HTML folder of the whole book built with the smoke profile, with a throw-away cache."""
    from mecl_utils.book import build_book

    out = tmp_path_factory.mktemp("book")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MECL_CACHE_DIR", str(out / "cache"))
        return build_book(profile="smoke", out_dir=out)
