"""The curriculum mini-batch process (Bakhtiarnia, Zhang & Iosifidis, 2021, Sec. II-B and Fig. 2).

An epoch has ⌈N/N_b⌉ batches. Batch t, counted globally across epochs from 0, is drawn uniformly at random,
without replacement inside the batch, from the first ⌈λ(t)·N⌉ samples of the difficulty-ordered training data
(never fewer than one batch's worth). For one-pass pacing the window is the newest bucket instead of a prefix.

Vanilla training draws its batches the same way, with the window always the whole data set (``pacing.FULL``,
λ ≡ 1), so that the four methods differ only in their window: random curriculum against vanilla then
isolates "starting small". ``vanilla_sampling="epochs"`` gives vanilla ordinary shuffled epochs instead
(every sample once per epoch, the last batch holding the remainder): what a sampler without pacing does,
and what most training code does.

Every batch is a pure function of (seed, t): its generator is seeded with ``[seed, t]`` (shuffled epochs:
``[seed, epoch]``). Two runs with one seed are identical, a run can resume at any batch, and the
cached-feature and the image pipelines of the engine draw the very same batches.

:class:`CurriculumSampler` yields index arrays (rows of an image or cached-feature array). Two adapters feed
``model.fit``: :func:`curriculum_dataset`, a ``tf.data`` pipeline that gathers the rows in TensorFlow (the
engine's choice: 1.6× the samples/s of the PyDataset in ``benchmarks/sampler_throughput.py``), and
:class:`CurriculumBatches`, a backend-independent ``keras.utils.PyDataset``.
"""

from __future__ import annotations

import functools
import math

import keras
import numpy as np

from mecl_utils.curriculum.pacing import FULL, Pacing
from mecl_utils.curriculum.rows import LazyRows
from mecl_utils.curriculum.sorting import order
from mecl_utils.seeds import stream_seed

__all__ = [
    "VANILLA_SAMPLING",
    "CurriculumBatches",
    "CurriculumSampler",
    "curriculum_dataset",
    "sampler_for_method",
]

VANILLA_SAMPLING = ("paced", "epochs")  # vanilla through the paced sampler with λ ≡ 1, or shuffled epochs

# Window bounds are λ·N rounded up; this tolerance keeps float noise (0.04 · 50000 = 2000.0000000004) from
# adding a sample.
_ROUNDING = 1e-9


class CurriculumSampler:
    """Draws the sample indices of batch t from the window of the ordered data that the pacing allows."""

    def __init__(self, ordering, batch_size: int, pacing: Pacing | None = None, *, seed: int = 0):
        ordering = np.asarray(ordering)
        if ordering.ndim != 1 or ordering.size == 0 or not np.issubdtype(ordering.dtype, np.integer):
            raise ValueError(
                "ordering must be a non-empty 1-D array of sample indices (see curriculum.sorting.order)"
            )
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if pacing is not None and not isinstance(pacing, Pacing):
            raise TypeError(
                f"pacing must be a curriculum.pacing.Pacing (e.g. pacing.preset('FEP(100)')) or None "
                f"for vanilla training, got {type(pacing).__name__}"
            )
        self.ordering = ordering
        self.batch_size = int(batch_size)
        self.pacing = pacing
        self.seed = int(seed)
        self._epoch_cache: tuple[int, np.ndarray] | None = None

    @property
    def num_samples(self) -> int:
        return self.ordering.shape[0]

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def window(self, t: int) -> tuple[int, int]:
        """Positions [lo, hi) of the ordered data that batch t draws from."""
        n = self.num_samples
        if t < 0:
            raise ValueError(f"t must be >= 0 (batches are counted from 0), got {t}")
        if self.pacing is None:
            return 0, n
        lo_frac, hi_frac = self.pacing.window(t)
        lo = min(n - 1, math.floor(lo_frac * n + _ROUNDING))
        hi = max(lo + 1, min(n, math.ceil(hi_frac * n - _ROUNDING)))
        if hi - lo < self.batch_size:  # never fewer than one batch's worth
            hi = min(n, lo + self.batch_size)
            lo = max(0, hi - self.batch_size)
        return lo, hi

    def batch(self, t: int) -> np.ndarray:
        """Indices (into the original data) of the samples of batch t."""
        t = int(t)
        if t < 0:
            raise ValueError(f"t must be >= 0 (batches are counted from 0), got {t}")
        if self.pacing is None:
            epoch, position = divmod(t, self.batches_per_epoch)
            start = position * self.batch_size
            return self._vanilla_permutation(epoch)[start : start + self.batch_size]
        lo, hi = self.window(t)
        rng = np.random.default_rng([self.seed, t])
        picks = rng.choice(hi - lo, size=min(self.batch_size, hi - lo), replace=False)
        return self.ordering[lo + picks]

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """The index arrays of every batch of one epoch (epochs counted from 0)."""
        first = epoch * self.batches_per_epoch
        return [self.batch(t) for t in range(first, first + self.batches_per_epoch)]

    def _vanilla_permutation(self, epoch: int) -> np.ndarray:
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            permutation = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
            self._epoch_cache = (epoch, self.ordering[permutation])
        return self._epoch_cache[1]

    def __repr__(self) -> str:
        return (
            f"CurriculumSampler(num_samples={self.num_samples}, batch_size={self.batch_size}, "
            f"pacing={self.pacing!r}, seed={self.seed})"
        )


def sampler_for_method(
    method: str,
    losses,
    batch_size: int,
    pacing: Pacing | None,
    *,
    seed: int = 0,
    order_seed: int | None = None,
    labels=None,
    balance: bool = False,
    vanilla_sampling: str = "paced",
) -> CurriculumSampler:
    """The sampler of one of the paper's four methods: the ordering of ``method`` and its window.

    ``pacing`` is required for curriculum, anti and random, and ignored for vanilla, whose window is the
    whole data set (``vanilla_sampling="paced"``, the default) or which runs shuffled epochs
    (``"epochs"``). ``seed`` draws the batches; ``order_seed`` the random order and the tie-break of the
    teacher's order (default: a stream derived from ``seed``, never the batches' own).
    """
    if vanilla_sampling not in VANILLA_SAMPLING:
        raise ValueError(
            f"unknown vanilla_sampling {vanilla_sampling!r}; valid values: {', '.join(VANILLA_SAMPLING)}"
        )
    if method != "vanilla" and pacing is None:
        raise ValueError(f"method {method!r} needs a pacing function, e.g. pacing.preset('FEP(100)')")
    order_seed = stream_seed(seed, "order") if order_seed is None else order_seed
    ordering = order(method, losses, seed=order_seed, labels=labels, balance=balance)
    if method == "vanilla":
        pacing = FULL if vanilla_sampling == "paced" else None
    return CurriculumSampler(ordering, batch_size, pacing, seed=seed)


def curriculum_dataset(x, y, sampler: CurriculumSampler, *, epochs: int, start_batch: int = 0):
    """A ``tf.data.Dataset`` of the batches t = start_batch, ..., start_batch + epochs · len - 1, in order.

    The rows of ``x`` and ``y`` are gathered by TensorFlow; ``x`` is an array, or ``rows.LazyRows`` (features
    on disk, ``feature_shards.ShardedFeatures``), which then read only each batch's rows.
    Pass it to ``model.fit(dataset, epochs=epochs, steps_per_epoch=sampler.batches_per_epoch)``; Keras does
    not reorder a tf.data pipeline. With ``steps_per_execution`` > 1 it must divide the epoch's batches
    (``train_branch`` uses the whole epoch): Keras runs every call to its full count of steps.
    """
    import tensorflow as tf  # the engine's backend; the PyDataset below works with any Keras backend

    if len(x) != len(y):
        raise ValueError(f"x and y must have one row per sample, got {len(x)} and {len(y)}")
    if sampler.ordering.max() >= len(x):
        raise ValueError(
            f"the sampler orders {sampler.ordering.max() + 1}+ samples but x has only {len(x)} rows"
        )
    # All index arrays are drawn up front (the sampler makes ~20,000 batches/s) and handed to TensorFlow as
    # one ragged tensor: no Python runs per training step.
    batches = [sampler.batch(t) for t in range(start_batch, start_batch + epochs * sampler.batches_per_epoch)]
    rows = tf.RaggedTensor.from_row_lengths(np.concatenate(batches), [len(b) for b in batches])
    y_all = tf.constant(y)
    if isinstance(x, LazyRows):  # read batch by batch
        gather_x = x.tf_gather
    else:
        x_all = tf.constant(x)
        gather_x = functools.partial(tf.gather, x_all)
    index = tf.data.Dataset.from_tensor_slices(rows)
    # No autotuning: the pipeline is fixed, and deleting an iterator waits for the autotuning thread, which
    # left a worker idle for up to ~8 s at the end of a run when two ran at once (benchmarks/README.md).
    options = tf.data.Options()
    options.autotune.enabled = False
    pairs = index.map(lambda i: (gather_x(i), tf.gather(y_all, i))).prefetch(2)
    return pairs.with_options(options)


class CurriculumBatches(keras.utils.PyDataset):
    """``model.fit`` input that serves ``(x[idx], y[idx])`` for the sampler's batches t = 0, 1, 2, ...

    ``x`` and ``y`` are arrays indexed by sample (images or cached backbone features). The batch index Keras
    asks for is ignored during training: Keras shuffles the batch order of a PyDataset by default and peeks at
    the first batches before training, and either would scramble the pacing. Instead, from the first
    ``on_epoch_begin`` on, every request is served the next batch of the global sequence. Pass ``start_batch``
    to resume (e.g. ``initial_epoch · len(dataset)``). Threaded or multiprocess workers are refused since they
    would fetch batches out of order.
    """

    def __init__(self, x, y, sampler: CurriculumSampler, *, start_batch: int = 0, **kwargs):
        super().__init__(**kwargs)
        if self.workers > 1 or self.use_multiprocessing:
            raise ValueError(
                "CurriculumBatches serves batches in pacing order: use workers=1 and no multiprocessing"
            )
        if len(x) != len(y):
            raise ValueError(f"x and y must have one row per sample, got {len(x)} and {len(y)}")
        if sampler.ordering.max() >= len(x):
            raise ValueError(
                f"the sampler orders {sampler.ordering.max() + 1}+ samples but x has only {len(x)} rows"
            )
        self.x, self.y, self.sampler = x, y, sampler
        self.next_batch = int(start_batch)
        self._training = False

    def __len__(self) -> int:
        return self.sampler.batches_per_epoch

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for an epoch of {len(self)} batches")
        if self._training:
            t, self.next_batch = self.next_batch, self.next_batch + 1
        else:  # Keras peeking at shapes, or a user indexing by hand: batch `index` of the current epoch
            t = (self.next_batch // len(self)) * len(self) + index
        idx = self.sampler.batch(t)
        return self.x[idx], self.y[idx]

    def on_epoch_begin(self) -> None:
        self._training = True
