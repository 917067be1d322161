"""Training inputs that stay on disk: rows read by index, batch by batch (the sampler of Fig. 2 picks rows).

The curriculum sampler draws row indices; an array in memory serves them with a gather. Inputs too large
for memory (a deep layer's features at the paper's input sizes) implement :class:`LazyRows` instead: the
sampler's pipeline (``sampler.curriculum_dataset``) calls ``tf_gather`` for each batch, and training
(``classifier_wise``) evaluates and predicts them through ``dataset``, which streams every row in order.
Consumers check for this one type, never for attributes: anything else is an array.
"""

from __future__ import annotations

import abc

import numpy as np

__all__ = ["LazyRows", "RowSubset"]


class LazyRows(abc.ABC):
    """Rows of one split that are read on demand: ``len`` and ``shape`` read none of them."""

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, ...]:
        """(rows, *one row's shape), as an array's."""

    @abc.abstractmethod
    def tf_gather(self, rows):
        """The float32 values of ``rows`` (an integer tensor), as a TensorFlow op for a ``tf.data`` map."""

    def dataset(self, labels: np.ndarray | None = None, *, batch_size: int = 32):
        """A ``tf.data.Dataset`` of consecutive batches of rows (with their ``labels`` when given)."""
        import tensorflow as tf

        n = len(self)
        starts = tf.data.Dataset.range(0, n, batch_size)
        batches = starts.map(lambda start: self.tf_gather(tf.range(start, tf.minimum(start + batch_size, n))))
        if labels is not None:
            if len(labels) != n:
                raise ValueError(f"{len(labels)} labels for {n} rows: pass one label per row")
            batches = tf.data.Dataset.zip(
                batches, tf.data.Dataset.from_tensor_slices(labels).batch(batch_size)
            )
        return batches.prefetch(2)


class RowSubset(LazyRows):
    """Some ``rows`` (indices, in the order given) of other lazy rows: a condition's training subset."""

    def __init__(self, rows_of: LazyRows, rows: np.ndarray):
        self.rows_of, self.rows = rows_of, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.rows_of.shape[1:])

    def tf_gather(self, rows):
        import tensorflow as tf

        return self.rows_of.tf_gather(tf.gather(tf.constant(self.rows), rows))
