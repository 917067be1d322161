"""Results: a store with one row per finished run, and the rule that one table reads one configuration.

The store is a CSV rewritten atomically (temporary file + ``os.replace``) after each run, so a killed run
loses at most the run in flight and a re-run skips every finished ``run_id``. Each write holds a lock on the
file across processes and reads the file again first, so two writers (a notebook and the command line) keep
each other's rows. ``require_one_configuration`` refuses rows that would average two configurations as one
case (``report.table_iv`` and the exit and strategy readings call it). A profile's store is
``<cache dir>/results/<profile>.csv`` unless the caller names another (``default_results_path``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
from filelock import FileLock

__all__ = [
    "CASE",
    "METHOD_COLUMNS",
    "ResultsStore",
    "default_results_path",
    "mixed_settings",
    "require_one_configuration",
]

METHOD_COLUMNS = {"vanilla": "Vanilla", "curriculum": "Curriculum", "anti": "Anti", "random": "Random"}


def default_results_path(profile_name: str) -> Path:
    """A profile's results store when no other file is named: ``<cache dir>/results/<profile>.csv``."""
    from mecl_utils.cache import cache_dir  # imports Keras, which the store itself never needs

    return cache_dir() / "results" / f"{profile_name}.csv"


class ResultsStore:
    """Rows of finished runs in one CSV file, keyed by ``run_id``; several processes may write it at once.

    ``append`` holds a lock on ``<file>.lock`` (``filelock``: across processes), reads the file afresh, adds
    its row and replaces the file atomically, so no writer drops another's rows. Every read (``in``,
    ``len``, ``frame``) reads the file again when it changed since this store last read it, so a row another
    process appended counts as finished here too.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_path = self.path.with_name(f"{self.path.name}.lock")
        self._frame, self._seen = pd.DataFrame(), None
        self._refresh()

    def _signature(self) -> tuple[int, int, int] | None:
        """What changes whenever the file is replaced: its inode, modification time and size."""
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_size

    def _refresh(self) -> None:
        signature = self._signature()
        if signature is None or signature != self._seen:
            # Stated before reading: should the file change in between, the next look reads it again.
            self._frame, self._seen = self._read(), signature

    def _read(self) -> pd.DataFrame:
        if not self.path.exists():
            return pd.DataFrame()
        try:
            frame = pd.read_csv(self.path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(
                f"cannot read the results store {self.path} ({err}); move it aside to start afresh, "
                "or repair it (one header line, then one row per run)"
            ) from err
        if len(frame) and "run_id" not in frame.columns:
            raise ValueError(f"{self.path} has no run_id column: it is not a mecl results store")
        return frame

    def __contains__(self, run_id: str) -> bool:
        self._refresh()
        return bool(len(self._frame)) and run_id in set(self._frame["run_id"])

    def __len__(self) -> int:
        self._refresh()
        return len(self._frame)

    def frame(self) -> pd.DataFrame:
        self._refresh()
        return self._frame.copy()

    def append(self, row: dict) -> None:
        """Add one finished run: under the lock, read the file again, add the row, rewrite it atomically."""
        if "run_id" not in row:
            raise ValueError("a result row needs a run_id")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self._lock_path):
            self._frame, self._seen = pd.DataFrame(), None
            self._refresh()  # the rows other processes appended since this store last read the file
            if len(self._frame) and row["run_id"] in set(self._frame["run_id"]):
                raise ValueError(f"run {row['run_id']} is already in {self.path}")
            frame = pd.concat([self._frame, pd.DataFrame([row])], ignore_index=True)
            handle, temporary = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(handle, "w", newline="") as file:
                    frame.to_csv(file, index=False)
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            # Read back on the next ``frame()``: the file, not this concat, is what every reader sees (a
            # row's "" reads back as missing).
            self._frame, self._seen = pd.DataFrame(), None


CASE = ["backbone", "dataset", "branch"]

# What a result row records of its run's configuration beyond case, method, repetition and stage: rows that
# differ in one of these are runs of different configurations, never repetitions of one. Settings of a
# case are shared by all its methods (the data, the backbone, where the features live); settings of a
# method may differ from one method to the next (vanilla has no teacher), never within one.
CASE_SETTINGS = ("profile", "training_version", "data_fingerprint", "backbone_key", "feature_mode", "layer")
METHOD_SETTINGS = (
    "optimizer",
    "learning_rate",
    "teacher",
    "pacing",
    "eval_split",
    "distillation_weight",
    "distillation_temperature",
)
# What each run measured or when it ran: differs from run to run of one configuration.
RUN_OUTCOMES = (
    "run_id",
    "accuracy",
    "best_val_accuracy",
    "val_accuracy",
    "train_loss",
    "seconds",
    "finished",
    "backbone_test_accuracy",
    "data_seconds",
    "networks_seconds",
    "features_seconds",
)


def mixed_settings(results: pd.DataFrame) -> dict[str, list[str]]:
    """The configuration fields whose values differ within a case (``CASE_SETTINGS``) or within one method
    of a case (``METHOD_SETTINGS``), each with the values it takes, as text.

    A missing value and "" are one value: a row appended in this session holds "" where a row read back
    from the CSV file holds a missing value (vanilla's teacher).
    """
    case = [key for key in CASE if key in results]  # a whole network's rows have no branch
    mixed: dict[str, set[str]] = {}
    for keys, fields in ((case, CASE_SETTINGS), ([*case, "method"], METHOD_SETTINGS)):
        present = [field for field in fields if field in results]
        for _, group in results.groupby(keys, sort=False):
            for field in present:
                values = set(group[field].map(lambda value: "" if pd.isna(value) else str(value)))
                if len(values) > 1:
                    mixed.setdefault(field, set()).update(values)
    return {field: sorted(values) for field, values in mixed.items()}


def require_one_configuration(results: pd.DataFrame) -> None:
    """Refuse rows that would average runs of different configurations as if they were repetitions.

    A per-repetition table (``pivot_table`` by repetition) averages every row that shares a case, method
    and repetition number: runs of two feature modes, data sets or learning rates would read as one
    repetition of one configuration. Raises ``ValueError`` naming the fields that differ and how to keep
    one configuration: the command line's ``--where FIELD=VALUE``, or filtering the frame in Python.
    """
    mixed = mixed_settings(results)
    if mixed:
        field, values = next(iter(mixed.items()))
        differing = "; ".join(f"{name}: {', '.join(map(repr, taken))}" for name, taken in mixed.items())
        raise ValueError(
            f"the results mix runs of different configurations ({differing}); their repetitions must "
            f"not be averaged together. Keep one: `--where {field}={values[0]}` on the command line, or "
            f"results[results[{field!r}].astype(str) == {values[0]!r}] in Python"
        )
    case = [key for key in CASE if key in results]
    keys = [*case, "method", "repetition"]
    repeated = results[results.duplicated(keys, keep=False)]
    if len(repeated):
        differing = [
            column
            for column in repeated.columns
            if column not in (*keys, "stage", *RUN_OUTCOMES)
            and (repeated.groupby(keys)[column].nunique(dropna=False) > 1).any()
        ]
        first = repeated.iloc[0]
        raise ValueError(
            f"{len(repeated)} rows share a case, method and repetition (e.g. {first['method']} repetition "
            f"{first['repetition']} of {'/'.join(str(first[k]) for k in case)}) and would be averaged as one "
            f"repetition; they differ in {', '.join(differing) or 'nothing the rows record'}. Keep one "
            "configuration with `--where FIELD=VALUE` on the command line, or filter the frame in Python"
        )
