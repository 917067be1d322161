"""Branch runs as Ray tasks: the same results on one worker, two, or a two-node cluster; clear errors.

Every Ray instance here listens on 127.0.0.1 only and is shut down by the test that started it; nothing
calls `ray stop`, which would end every Ray process on the machine.
"""

import os

import pytest

from mecl_utils.protocol.branch_runs import train_run
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import RunSpec
from mecl_utils.protocol.stages import run_case
from mecl_utils.run.engine import Engine, default_workers
from tests.test_experiments import CASE, _data, _profile


def _accuracies(store: ResultsStore) -> dict:
    frame = store.frame()
    return dict(zip(frame["run_id"], frame["accuracy"], strict=True))


@pytest.mark.slow
def test_one_worker_and_two_workers_give_identical_runs(tmp_path):
    profile, data = _profile(), _data()
    stores = {n: ResultsStore(tmp_path / f"runs-{n}.csv") for n in (1, 2)}
    for workers, store in stores.items():
        with Engine(workers) as engine:
            run_case(profile, CASE, data, store, engine=engine)
    assert len(stores[1]) == len(stores[2]) == 14
    assert _accuracies(stores[1]) == _accuracies(stores[2])


@pytest.mark.slow
def test_a_failing_run_in_a_task_raises_its_own_error():
    spec = RunSpec(
        "curriculum_search", CASE, "curriculum", "sgd", 0.01, "no-such-teacher", "FEP(100)", 0, "hparam"
    )
    with Engine(1) as engine, pytest.raises(KeyError, match="no-such-teacher"):
        list(engine.run(train_run, [spec], _profile(), _data()))


@pytest.mark.slow
def test_the_embedded_instance_listens_on_loopback_and_ends_with_the_engine():
    import ray

    with Engine(1) as engine:
        engine._start()
        assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    assert not ray.is_initialized()


@pytest.mark.slow
def test_the_embedded_instance_trains_at_the_callers_niceness_not_rays_15(monkeypatch):
    import ray

    monkeypatch.delenv("RAY_worker_niceness", raising=False)
    with Engine(1) as engine:
        engine._start()
        [(niceness, _)] = ray.get([engine._task.options(num_cpus=1).remote(os.nice, 0)])
    assert niceness == os.nice(0)


@pytest.mark.parametrize("workers", [-1, 1.5, True, "2"])
def test_workers_must_be_a_whole_number(workers):
    with pytest.raises(ValueError, match="workers must be a whole number >= 0"):
        Engine(workers)


def test_mecl_workers_sets_the_default(monkeypatch):
    monkeypatch.setenv("MECL_WORKERS", "3")
    assert default_workers() == 3 and Engine().workers == 3


def test_without_workers_runs_train_in_this_process_without_ray():
    import ray

    engine = Engine(0)
    profile, data = _profile(), _data()
    specs = [
        RunSpec("vanilla_search", CASE, "vanilla", optimizer, 0.01, None, None, 0, "hparam")
        for optimizer in ("sgd", "adam")
    ]
    finished = list(engine.run(train_run, specs, profile, data))
    assert [done for done, _ in finished] == specs
    for spec, (row, _) in finished:  # each row is its own spec's run, trained as train_run trains it
        assert (row["method"], row["optimizer"], row["eval_split"]) == ("vanilla", spec.optimizer, "hparam")
        assert row["accuracy"] == train_run(spec, profile, data)[0]["accuracy"]
    assert not ray.is_initialized() and engine.nodes == {}


def test_the_engine_runs_whatever_task_it_is_handed_with_the_shared_arguments():
    assert list(Engine(0).run(divmod, [7, 9], 2)) == [(7, (3, 1)), (9, (4, 1))]


def test_an_address_means_the_clusters_cpus(monkeypatch):
    monkeypatch.delenv("MECL_WORKERS", raising=False)
    engine = Engine(address="127.0.0.1:1")
    assert engine.workers is None and engine.describe() == "Ray cluster at 127.0.0.1:1"
