"""Branch runs in parallel: a pool of worker processes, each training one branch at a time on one thread.

The protocol of Bakhtiarnia, Zhang & Iosifidis (2021), Sec. III, trains many small branches, and within a
stage of it (the vanilla search, the curriculum search, the repetitions) the runs are independent. One
branch step is too small to keep two CPU cores busy: in one process with two TensorFlow threads an identical
run took 13.6 s or 22.5 s, the slow ones leaving a core idle, while two one-thread workers keep both cores
busy (``benchmarks/README.md``). So :class:`RunPool` hands a stage's runs to ``workers`` spawned
processes, each with TensorFlow pinned to one thread and oneDNN's kernels on, and yields every result as
soon as it is ready, so the caller stores it at once and an interrupted grid loses only the runs in flight.

A run's result depends only on its spec, never on the number of workers or on which worker ran it: every
worker runs the same single-threaded kernels, and every seed of a run comes from its spec. ``workers=0``
trains in the calling process instead (TensorFlow's default threads), which is simpler to debug but can
differ from the workers in the last digits.

The case's arrays reach the workers through a file in a private temporary folder, written once per case;
each worker reads it once per case.

``worker_processes`` is the same kind of pool for other independent work: ``prepare.prepare_networks``
trains the backbone and the teachers side by side in it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import multiprocessing
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

__all__ = ["RunPool", "default_workers", "worker_processes"]

# Set in each worker before TensorFlow loads (a value set by the user is kept): no TensorFlow start-up notices
# from every worker. oneDNN's kernels reach the workers through mecl_utils/__init__.py, which set them here.
WORKER_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def default_workers() -> int:
    """``$MECL_WORKERS`` if set; else 1 when TensorFlow sees a GPU, else one worker per CPU core."""
    if os.environ.get("MECL_WORKERS"):
        return _check_workers(int(os.environ["MECL_WORKERS"]), "MECL_WORKERS")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return 1  # the runs would share one GPU; a single process keeps it busy
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_workers(workers, name: str = "workers") -> int:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(
            f"{name} must be a whole number >= 0 (0: train in this process; N: N worker processes), "
            f"got {workers!r}"
        )
    return workers


class RunPool:
    """Trains ``RunSpec``s of one profile, in ``workers`` processes (``None``: ``default_workers()``).

    Use it as a context manager, so the processes end with it::

        with RunPool() as pool:
            for case in cases(profile):
                run_case(profile, case, prepare_case(profile, case), store, pool=pool)
    """

    def __init__(self, workers: int | None = None):
        self.workers = default_workers() if workers is None else _check_workers(workers)
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._settings = contextlib.ExitStack()
        self._folder: Path | None = None
        self._shared: tuple[object, Path] | None = None  # the case data the workers read, and its file

    def __enter__(self) -> RunPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (runs not started are cancelled) and delete the shared files."""
        self._settings.close()  # shuts the worker processes down
        self._executor = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._shared = None

    def run(self, specs: Iterable, profile, data) -> Iterator[tuple[object, dict]]:
        """(spec, result row) for every spec, in the order the runs finish."""
        specs = list(specs)
        if self.workers == 0 or not specs:
            from .experiments import execute

            for spec in specs:
                yield spec, execute(spec, profile, data)
            return
        executor, path = self._start(), self._share(data)
        futures = {executor.submit(_execute_in_worker, spec, profile, str(path)): spec for spec in specs}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    row = future.result()
                except BrokenProcessPool as err:
                    self.close()
                    raise RuntimeError(
                        "a branch-training worker process died; the finished runs are stored. Causes: "
                        "memory (re-run to resume with fewer workers: MECL_WORKERS=1, or 0 to train in "
                        "this process), or a script that starts the pool without an `if __name__ == "
                        "'__main__':` guard (spawned workers import the main module; see above)."
                    ) from err
                yield futures[future], row
        finally:
            for future in futures:
                future.cancel()  # the caller stopped early or a run failed: start nothing more

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = self._settings.enter_context(worker_processes(self.workers))
        return self._executor

    def _share(self, data) -> Path:
        """The file holding ``data`` for the workers; one case at a time (a new case replaces the last)."""
        if self._shared is None or self._shared[0] is not data:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="mecl-runs-"))
            path = self._folder / f"case-{id(data)}.pickle"
            with open(path, "wb") as file:
                pickle.dump(data, file, protocol=pickle.HIGHEST_PROTOCOL)
            if self._shared is not None:
                self._shared[1].unlink(missing_ok=True)
            self._shared = (data, path)
        return self._shared[1]

    def __repr__(self) -> str:
        return f"RunPool(workers={self.workers})"


@contextlib.contextmanager
def worker_processes(workers: int) -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes, TensorFlow on one thread in each; shut down on exit.

    Spawned processes copy this process's environment when they start (on demand, while the pool lives), so
    the worker settings stay in place until the pool closes. Work not started when the block ends is
    cancelled.
    """
    with _environment(WORKER_ENVIRONMENT):
        context = multiprocessing.get_context("spawn")  # TensorFlow does not survive a fork
        executor = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker
        )
        try:
            yield executor
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """``values`` added to os.environ (where not already set) for the duration of the block."""
    added = {name: value for name, value in values.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _start_worker() -> None:
    import logging

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # each run builds a model: retracing is expected


@functools.lru_cache(maxsize=1)
def _load(path: str):
    with open(path, "rb") as file:
        return pickle.load(file)


def _execute_in_worker(spec, profile, path: str) -> dict:
    from .experiments import execute

    return execute(spec, profile, _load(path))
