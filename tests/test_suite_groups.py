"""`make test` relies on pytest-xdist's ``--dist loadgroup`` to build the smoke cache and the book once.

pytest 9.2 changed how node ids are stored and pytest-xdist 3.8 silently stopped grouping
(pytest-dev/pytest-xdist#1386): every test then ran wherever it landed and the book was built on both
workers. This runs a four-test suite the way ``make test`` runs ours and checks that one group stays on one
worker.
"""

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group("shared"))
"""

TESTS = """
import os
import pytest

@pytest.mark.parametrize("n", range(4))
def test_records_its_worker(n, tmp_path_factory):
    (tmp_path_factory.getbasetemp().parent / f"worker-{n}").write_text(os.environ["PYTEST_XDIST_WORKER"])
"""


def test_loadgroup_keeps_a_group_on_one_worker(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_grouped=TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    base = next(pytester.path.glob("**/worker-0")).parent
    workers = {(base / f"worker-{n}").read_text() for n in range(4)}
    assert len(workers) == 1, f"one xdist group ran on {sorted(workers)}"


def test_the_longest_groups_are_collected_first_and_make_test_keeps_that_order():
    import subprocess
    import sys

    files = ["tests/test_pacing.py", "tests/test_paper_miniature.py", "tests/test_book.py"]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    modules = [line.split("::")[0] for line in collected if "::" in line]
    order = [module for index, module in enumerate(modules) if module not in modules[:index]]
    assert order == ["tests/test_book.py", "tests/test_paper_miniature.py", "tests/test_pacing.py"]
    make = subprocess.run(["make", "-n", "test"], capture_output=True, text=True, check=True).stdout
    assert "--dist loadgroup --no-loadscope-reorder" in make
