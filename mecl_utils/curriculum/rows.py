"""Training inputs that stay on disk: rows read by index, batch by batch (the sampler of Fig. 2 picks rows).

The curriculum sampler draws row indices; an array in memory serves them with a gather. Inputs too large
for memory (a deep layer's features at the paper's input sizes) implement :class:`LazyRows` instead: the
sampler's pipeline (``sampler.curriculum_dataset``) calls ``tf_gather`` for each batch, and training
(``classifier_wise``) evaluates and predicts them through ``dataset``, which streams every row in order.
Consumers check for this one type, never for attributes: anything else is an array, which
``array_batches`` streams in the same consecutive batches.
"""

from __future__ import annotations

import abc

import numpy as np

__all__ = ["LazyRows", "RowSubset", "array_batches"]


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


def array_batches(arrays, batch_size: int):
    """``arrays`` (one array, or a tuple of them) as a ``tf.data.Dataset`` of consecutive batches, with floats
    of another type cast to Keras' float type, as Keras' own array adapter casts them.

    Evaluating or predicting on arrays through this costs less than handing Keras the arrays: its adapter
    takes about 12 ms to start each pass, this pipeline 0.4 ms, and short runs make many passes (the smoke
    protocol ran 1.2x faster, ``benchmarks/smoke_grid.py``). The batches and their values are the adapter's.
    """
    import keras
    import tensorflow as tf  # the engine's backend, as in ``sampler.curriculum_dataset``

    def as_keras_would(array):
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating) and array.dtype != keras.backend.floatx():
            return array.astype(keras.backend.floatx())
        return array

    cast = tuple(map(as_keras_would, arrays)) if isinstance(arrays, tuple) else as_keras_would(arrays)
    return tf.data.Dataset.from_tensor_slices(cast).batch(batch_size)
