"""The smoke grid on a two-node Ray cluster, and what interruptions leave behind.

The cluster is ``ray.cluster_utils.Cluster`` on this machine: a head node and a worker node, one CPU each,
both on 127.0.0.1. It trains the smoke grid's first case (16 runs over both nodes, every stage): the second
case would exercise nothing the first does not, and cost the suite another minute. Killing the worker
node mid-grid must still give exactly one row per run. Killing the command line's driver with SIGKILL
(what restarting a notebook kernel does) must leave no Ray process, and Ctrl-C must stop with one line
saying how many runs are stored and how to resume.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.results import ResultsStore, default_results_path
from mecl_utils.protocol.runs import cases
from mecl_utils.run.engine import Engine, loopback_only
from mecl_utils.run.grid import run_grid
from tests.test_engine import _accuracies

ROOT = Path(__file__).resolve().parents[1]
SMOKE = get_profile("smoke")
FIRST_CASE = cases(SMOKE)[:1]

pytestmark = pytest.mark.slow

# The test cluster's head checks its nodes every second and gives a node up after three missed checks,
# instead of Ray's default (5 s before the first check, then every 3 s, five missed): the lost worker node is
# then noticed, and its tasks retried, within seconds. A test-only setting of the cluster the tests start.
QUICK_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_failure_threshold": 3,
}


@pytest.fixture
def cluster(monkeypatch, smoke_cache):
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("MECL_CACHE_DIR", str(smoke_cache))
    with loopback_only():
        started = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": QUICK_HEALTH_CHECKS}
        )
        started.worker = started.add_node(num_cpus=1)
        started.wait_for_nodes()
        try:
            yield started
        finally:
            started.shutdown()


@pytest.fixture(scope="module")
def local_run(smoke_cache):
    """The smoke grid's first case on the embedded local instance: what the cluster must reproduce.

    Read back from the session's smoke results where the book build or the command-line test ran the grid
    already (on the embedded instance as well), else trained here.
    """
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MECL_CACHE_DIR", str(smoke_cache))
        store = ResultsStore(default_results_path("smoke"))
        with Engine(2) as engine:
            run_ids, _ = run_grid(SMOKE, store, only=FIRST_CASE, engine=engine)
    return run_ids, store.frame().set_index("run_id").loc[run_ids, "accuracy"].to_dict()


def test_the_smoke_grid_on_two_nodes_matches_a_local_run(cluster, local_run, tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")
    with Engine(address=cluster.address) as engine:
        run_ids, _ = run_grid(SMOKE, store, only=FIRST_CASE, engine=engine)
        import ray

        assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    assert sorted(run_ids) == sorted(local_run[0])
    assert _accuracies(store) == local_run[1]
    assert len(engine.nodes) == 2 and min(engine.nodes.values()) > 0, engine.nodes


def test_losing_the_worker_node_mid_grid_still_stores_every_run_once(cluster, local_run, tmp_path):
    store = ResultsStore(tmp_path / "runs.csv")

    def remove_worker_node_after_a_few_runs():
        while len(ResultsStore(store.path)) < 4 and not finished.is_set():
            time.sleep(0.2)
        cluster.remove_node(cluster.worker, allow_graceful=False)
        removed.set()

    finished, removed = threading.Event(), threading.Event()
    killer = threading.Thread(target=remove_worker_node_after_a_few_runs, daemon=True)
    killer.start()
    try:
        with Engine(address=cluster.address) as engine:
            run_ids, _ = run_grid(SMOKE, store, only=FIRST_CASE, engine=engine)
    finally:
        finished.set()
        killer.join(timeout=60)
    assert removed.is_set()
    frame = ResultsStore(store.path).frame()
    assert sorted(frame["run_id"]) == sorted(run_ids) == sorted(local_run[0])  # one row per run
    assert _accuracies(store) == local_run[1]


def _start_grid(tmp_path: Path, cache: Path) -> tuple[subprocess.Popen, Path]:
    results = tmp_path / "runs.csv"
    env = {**os.environ, "MECL_CACHE_DIR": str(cache), "MECL_WORKERS": "2"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "mecl_utils", "run", "--profile", "smoke", "--results", str(results)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
        # As in a terminal, whatever started this suite: a shell's background job ignores SIGINT, and
        # Python started with SIGINT ignored never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not (results.exists() and len(ResultsStore(results)) >= 2):
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < deadline, "no run stored within 300 s"
        time.sleep(0.2)
    return driver, results


def _left_behind(processes: list[psutil.Process], wait: float = 60) -> list[str]:
    """The processes still alive after ``wait`` seconds (they are killed, so nothing outlives the test)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.5)
    names = []
    for process in alive:
        names.append(" ".join(process.cmdline())[:120])
        process.kill()
    return names


def test_killing_the_driver_leaves_no_ray_process_behind(tmp_path, smoke_cache):
    driver, _ = _start_grid(tmp_path, smoke_cache)
    tree = psutil.Process(driver.pid).children(recursive=True)
    assert len(tree) >= 3  # Ray's own processes and the workers training
    driver.kill()
    driver.communicate()
    assert _left_behind(tree) == []


def test_ctrl_c_stops_with_one_line_saying_how_to_resume(tmp_path, smoke_cache):
    driver, results = _start_grid(tmp_path, smoke_cache)
    tree = psutil.Process(driver.pid).children(recursive=True)
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground group
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 130, stderr
    stored = len(ResultsStore(results))
    assert f"interrupted: {stored} runs stored in {results}" in stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    assert _left_behind(tree) == []
