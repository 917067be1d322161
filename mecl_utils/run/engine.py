"""Parallel work on Ray: the tasks a caller hands over, as Ray tasks, on one machine or a cluster.

The protocol of Bakhtiarnia, Zhang & Iosifidis (2021), Sec. III, trains many small branches, and within a
stage of it (the vanilla search, the curriculum search, the repetitions) the runs are independent; so are
the backbone and the teachers of a case. :class:`Engine` runs the functions it is handed with their
arguments (``run``, ``start_runs``, ``map``) as Ray tasks and yields every result as soon as it is ready,
so the caller (the driver, the only process that writes the results store) stores it at once and an
interrupted grid loses only the runs in flight. What a task is, and what the driver does with its result,
is the caller's (``stages.run_specs``, ``grid.run_cases``): the engine knows no protocol.

- With no address (and no ``$RAY_ADDRESS``), the first piece of work starts an embedded Ray instance on
  this machine, listening on 127.0.0.1 only, with one CPU per worker (``workers``, default one per core);
  it ends with the engine. With ``address`` the same tasks run on an existing Ray cluster.
- Every task declares its resources: one CPU, and a share of a GPU where the cluster has GPUs
  (``GPU_SHARE``). TensorFlow in the task runs on the task's CPUs only, so a run's result does not depend on
  what runs beside it, nor on the number of workers or nodes.
- The arguments runs share (a case's arrays) reach the tasks through Ray's object store, put once.
- A task whose worker process or node dies is retried (``MAX_RETRIES``); its result reaches the driver
  once, when the task returns.
- Ray's own start-up output stays out of the console unless ``$MECL_VERBOSE`` is set.
- The embedded instance's workers run at this process's niceness, not at Ray's default of 15: its own
  daemons and the driver then no longer preempt the training at every wake-up (``benchmarks/README.md``).
- Whatever the embedded instance started ends with this process, even one killed by SIGKILL
  (``reaper``).

``workers=0`` runs everything in the calling process instead (TensorFlow's default threads): simpler to
debug, no Ray at all, but it can differ from the tasks in the last digits.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator

from mecl_utils import quiet
from mecl_utils.run import reaper

__all__ = ["GPU_SHARE", "MAX_RETRIES", "Engine", "default_workers", "loopback_only"]

# Four branch runs share a GPU: one branch is far too small to fill one.
GPU_SHARE = 0.25
MAX_RETRIES = 3
# Arguments runs share (each open case's data, the profile) kept in the object store, the least recently
# used dropped first: room for more cases than grid.CASES_IN_FLIGHT keeps open side by side.
SHARED_VALUES = 4
# Set in every task's process before TensorFlow loads, on this machine and on a cluster's nodes (oneDNN's
# kernels need nothing here: importing mecl_utils, which a task does first, switches them on).
WORKER_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2"}
# For the embedded instance's raylet, which starts the workers (a value set by the user is kept).
EMBEDDED_ENVIRONMENT = {"RAY_worker_niceness": "0"}
# Without it Ray binds the embedded instance to the machine's network address (checked with Ray 2.60).
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Ray instances started in the block listen on 127.0.0.1 only (the processes they start, too).

    Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when it is imported, so the setting is applied
    both to the environment (for Ray's own processes) and to the imported module (for this one).
    """
    from ray._private import ray_constants

    saved_environment = {name: os.environ.get(name) for name in LOOPBACK_ONLY}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(LOOPBACK_ONLY)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def default_workers() -> int:
    """``$MECL_WORKERS`` if set; else 1 when TensorFlow sees a GPU, else one worker per CPU core."""
    if os.environ.get("MECL_WORKERS"):
        return _check_workers(int(os.environ["MECL_WORKERS"]), "MECL_WORKERS")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return 1  # the embedded instance on a GPU machine: runs share the GPU through GPU_SHARE
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_workers(workers, name: str = "workers") -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(
            f"{name} must be a whole number >= 0 (0: train in this process; N: N parallel Ray tasks), "
            f"got {workers!r}"
        )
    return workers


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` added to os.environ (where not already set) for the duration of the block."""
    added = {name: value for name, value in values.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


class Engine:
    """Independent calls (``run``, ``start_runs``, ``map``) as Ray tasks; see the module docstring.

    Use it as a context manager, so that an embedded Ray instance ends with it::

        with Engine() as engine:
            run_grid(profile, store, engine=engine)

    ``nodes`` counts, per Ray node id, the tasks that finished there.
    """

    def __init__(self, workers: int | None = None, *, address: str | None = None):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        if workers is None and (not self.address or os.environ.get("MECL_WORKERS")):
            workers = default_workers()
        self.workers = None if workers is None else _check_workers(workers)  # None: the cluster's CPUs
        self.nodes: collections.Counter[str] = collections.Counter()
        self._started = False  # whether this engine started Ray (and so shuts it down)
        self._reaper = None  # the watchdog that ends the embedded instance if this process dies
        self._task = None
        self._gpu_share = 0.0
        self._shared: dict[int, tuple[object, object]] = {}  # id -> (value, its object-store reference)
        self._runs: dict = {}  # started runs: Ray reference -> item
        self._queued: collections.deque = collections.deque()  # started runs, in process: (task, item, args)

    @property
    def in_process(self) -> bool:
        return self.workers == 0

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Forget the shared arguments and unfinished runs; shut Ray down if this engine started it."""
        self._shared.clear()
        self._runs.clear()
        self._queued.clear()
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
        if self._reaper is not None:  # whatever Ray left running is ended now, not in a minute
            self._reaper.stdin.close()
            self._reaper.wait(timeout=30)
            self._reaper = None
        self._task = None

    def describe(self) -> str:
        if self.in_process:
            return "in this process"
        if self.address:
            return f"Ray cluster at {self.address}"
        return f"{self.workers} Ray workers"

    def run(self, task: Callable, items: Iterable, *shared) -> Iterator[tuple[object, object]]:
        """(item, ``task(item, *shared)``) for every item, in the order the calls finish (``start_runs``)."""
        if self._runs or self._queued:
            raise RuntimeError("runs started with start_runs are still unfinished: read finished_runs first")
        self.start_runs(task, items, *shared)
        yield from self.finished_runs()

    def start_runs(self, task: Callable, items: Iterable, *shared) -> None:
        """Start ``task(item, *shared)`` for every item; ``finished_runs`` yields (item, result).

        The ``shared`` arguments (a case's data, the profile) are put in the object store once, and kept
        there for the calls that follow with the same objects (the last ``SHARED_VALUES``). Calls of several
        ``start_runs`` may be in flight together (``grid.run_cases``). In process, a call runs when
        ``finished_runs`` reaches it.
        """
        items = list(items)
        if self.in_process:
            self._queued.extend((task, item, shared) for item in items)
            return
        if not items:
            return
        self._start()
        references = [self._share(value) for value in shared]
        for item in items:
            self._runs[self._submit(task, item, *references)] = item

    def finished_runs(self) -> Iterator[tuple[object, object]]:
        """(item, result) of every started call as it finishes, until none is left.

        Calls started while this is being read are waited for too.
        """
        while self._queued:
            task, item, shared = self._queued.popleft()
            yield item, task(item, *shared)
        yield from self._gather(self._runs)

    def map(self, function: Callable, items: Iterable, *common) -> Iterator[tuple[object, object]]:
        """(item, ``function(*common, item)``) for every item, in the order the calls finish.

        The ``common`` arguments (a data set, its splits) are put in the object store once for all items.
        The calls run on the driver's node whenever it can run tasks, side by side: what they write to the
        cache (trained networks, teacher scores) is then where the driver reads it. On a cluster whose
        driver node has no CPUs for tasks, ``$MECL_CACHE_DIR`` must be a folder every node shares.
        """
        items = list(items)
        if self.in_process or not items:
            for item in items:
                yield item, function(*common, item)
            return
        self._start()
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        shared = [ray.put(value) for value in common]
        calls = {self._submit(function, *shared, item, scheduling_strategy=here): item for item in items}
        yield from self._gather(calls)

    def _submit(self, function: Callable, *args, **placement):
        options = {"num_cpus": 1, "max_retries": MAX_RETRIES, **placement}
        if self._gpu_share:
            options["num_gpus"] = self._gpu_share
        return self._task.options(**options).remote(function, *args)

    def _gather(self, pending: dict) -> Iterator[tuple[object, object]]:
        import ray
        from ray.exceptions import RayTaskError

        try:
            while pending:  # which may grow while this is read (start_runs)
                [ready], _ = ray.wait(list(pending), num_returns=1)
                what = pending.pop(ready)
                try:
                    result, node = ray.get(ready)
                except RayTaskError as err:
                    raise err.as_instanceof_cause() from None  # the task's own exception, its traceback kept
                except ray.exceptions.RayError as err:
                    raise RuntimeError(
                        f"a Ray task failed {MAX_RETRIES + 1} times without an error of its own ({err}); "
                        "the results already finished are stored. Causes: memory (re-run to resume with "
                        "fewer workers: MECL_WORKERS=1, or 0 to train in this process) or a lost node."
                    ) from err
                self.nodes[node] += 1
                yield what, result
        finally:
            for ref in pending:  # the caller stopped early, was interrupted, or a task failed
                ray.cancel(ref, force=True)
            pending.clear()

    def _share(self, value):
        """``value`` in the object store, put once (the last ``SHARED_VALUES`` used are kept)."""
        import ray

        if id(value) in self._shared:
            self._shared[id(value)] = self._shared.pop(id(value))  # used last: dropped last
        else:
            if len(self._shared) >= SHARED_VALUES:  # tasks still running keep their own reference alive
                self._shared.pop(next(iter(self._shared)))
            self._shared[id(value)] = (value, ray.put(value))
        return self._shared[id(value)][1]

    def _start(self) -> None:
        if self._task is not None:
            return
        import ray

        if not ray.is_initialized():
            verbose = quiet.is_verbose()
            settings = {
                "include_dashboard": False,
                "log_to_driver": verbose,
                "logging_level": logging.INFO if verbose else logging.ERROR,
            }
            if self.address:  # the nodes' processes do not inherit this one's environment
                ray.init(address=self.address, runtime_env={"env_vars": WORKER_ENVIRONMENT}, **settings)
            else:
                # Inherited (Ray's processes start during init) rather than a runtime environment, which
                # would start a second set of workers: 164/158 s instead of 168/169 s for a book grid.
                self._reaper = reaper.watch()
                with loopback_only(), _environment(WORKER_ENVIRONMENT | EMBEDDED_ENVIRONMENT):
                    ray.init(address="local", num_cpus=self.workers, **settings)  # new, never a running one
            self._started = True
        self._gpu_share = GPU_SHARE if ray.cluster_resources().get("GPU", 0) else 0.0
        self._task = ray.remote(_in_task)

    def __repr__(self) -> str:
        return f"Engine(workers={self.workers}, address={self.address!r})"


_pinned = False  # whether this worker process has set TensorFlow's threads


def _in_task(function: Callable, *args) -> tuple[object, str]:
    """Run ``function(*args)`` in a Ray worker, TensorFlow pinned to the task's CPUs; (result, node id)."""
    global _pinned
    import ray

    if not _pinned:
        import tensorflow as tf

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        tf.config.threading.set_intra_op_parallelism_threads(max(1, int(cpus)))
        tf.config.threading.set_inter_op_parallelism_threads(1)
        # Each run builds a model, so TensorFlow's retracing notice is expected.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        _pinned = True
    return function(*args), ray.get_runtime_context().get_node_id()
