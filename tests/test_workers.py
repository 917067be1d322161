"""Branch runs in worker processes: same results whatever the number of workers, clear errors."""

import pytest

from mecl_utils.experiments import RunSpec, run_case
from mecl_utils.results import ResultsStore
from mecl_utils.workers import RunPool, default_workers
from tests.test_experiments import CASE, _data, _profile


def _accuracies(store: ResultsStore) -> dict:
    frame = store.frame()
    return dict(zip(frame["run_id"], frame["accuracy"], strict=True))


@pytest.mark.slow
def test_one_worker_and_two_workers_give_identical_runs(tmp_path):
    profile, data = _profile(), _data()
    stores = {n: ResultsStore(tmp_path / f"runs-{n}.csv") for n in (1, 2)}
    for workers, store in stores.items():
        with RunPool(workers) as pool:
            run_case(profile, CASE, data, store, pool=pool)
    assert len(stores[1]) == len(stores[2]) == 14
    assert _accuracies(stores[1]) == _accuracies(stores[2])


@pytest.mark.slow
def test_a_failing_run_in_a_worker_raises_its_error():
    spec = RunSpec(
        "curriculum_search", CASE, "curriculum", "sgd", 0.01, "no-such-teacher", "FEP(100)", 0, "hparam"
    )
    with RunPool(1) as pool, pytest.raises(KeyError, match="no-such-teacher"):
        list(pool.run([spec], _profile(), _data()))


@pytest.mark.parametrize("workers", [-1, 1.5, True, "2"])
def test_workers_must_be_a_whole_number(workers):
    with pytest.raises(ValueError, match="workers must be a whole number >= 0"):
        RunPool(workers)


def test_mecl_workers_sets_the_default(monkeypatch):
    monkeypatch.setenv("MECL_WORKERS", "3")
    assert default_workers() == 3 and RunPool().workers == 3


def test_without_workers_runs_train_in_this_process(tmp_path):
    pool = RunPool(0)
    spec = RunSpec("vanilla_search", CASE, "vanilla", "sgd", 0.01, None, None, 0, "hparam")
    [(done, row)] = pool.run([spec], _profile(), _data())
    assert done is spec and 0 <= row["accuracy"] <= 1 and pool._executor is None


def test_workers_read_one_case_at_a_time_and_close_removes_it():
    pool, first, second = RunPool(1), _data(), _data()
    first_file = pool._share(first)
    assert pool._share(first) == first_file  # written once per case
    second_file = pool._share(second)
    assert not first_file.exists() and second_file.exists()
    pool.close()
    assert not second_file.parent.exists()
