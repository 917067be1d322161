"""Every training sample's predicted class at each presentation of a fit, logged at no extra pass.

Toneva et al. (2019, "An Empirical Study of Example Forgetting during Deep Neural Network Learning") score a
training sample by its *forgetting events*: how often it goes from classified correctly to incorrectly
between two presentations while the network trains (``curriculum.difficulty.forgetting_events``). The
minibatch's own forward pass already predicts every sample in it, so no pass is added: ``PredictionLog`` is
a functional classifier whose training step writes the arg-max of the outputs it computed anyway into an
(epochs, samples) table, at each sample's row. ``fit_logged`` passes the rows beside the labels, so Keras'
shuffle moves them together.

The log stores predicted classes, not correctness, so that the events can be counted against any labels
(a noisy-label condition's among them). The weights are those of a plain ``fit`` to the last bit (tested):
the log draws no random number, and Keras shuffles one permutation of indices however many arrays it
gathers with it.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

__all__ = ["UNSEEN", "PredictionLog", "fit_logged"]

UNSEEN = -1  # a table entry of a sample no step presented in that epoch


class PredictionLog(keras.Model):
    """A functional classifier whose training step logs each sample's predicted class (see the module).

    Build it from a classifier's ``inputs`` and ``outputs`` (the layers, and so the weights, are shared) and
    fit it on ``(x, (labels, rows))``, ``rows[i]`` being sample i's column of the table.
    """

    def __init__(self, inputs, outputs, *, samples: int, epochs: int, steps_per_epoch: int, **kwargs):
        super().__init__(inputs, outputs, **kwargs)
        self.steps_per_epoch = steps_per_epoch
        self.table = tf.Variable(tf.fill((epochs, samples), tf.constant(UNSEEN, tf.int16)), trainable=False)
        self._rows = None  # the symbolic rows of the batch being traced

    def train_step(self, data):
        x, (y, rows), sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self._rows = rows
        try:
            return super().train_step((x, y) if sample_weight is None else (x, y, sample_weight))
        finally:
            self._rows = None

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self._rows is not None:  # Keras' train step calls this after the weight update, with its y_pred
            epoch = (tf.cast(self.optimizer.iterations, tf.int32) - 1) // self.steps_per_epoch
            rows = tf.cast(tf.reshape(self._rows, [-1]), tf.int32)
            predicted = tf.cast(tf.argmax(y_pred, axis=-1), tf.int16)
            self.table.scatter_nd_update(tf.stack([tf.fill(tf.shape(rows), epoch), rows], axis=1), predicted)
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    @property
    def predictions(self) -> np.ndarray:
        """(epochs, samples): the class predicted for each sample in each epoch, ``UNSEEN`` where none."""
        return self.table.numpy()


def fit_logged(
    classifier: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    epochs: int,
    compile_kwargs: dict,
    verbose: int = 0,
    before_fit=None,
) -> np.ndarray:
    """Train ``classifier`` (uncompiled) on ``(x, y)`` as ``fit(shuffle=True)`` would; its prediction table.

    ``compile_kwargs`` go to ``compile``; ``before_fit(model)`` runs on the compiled model before ``fit``
    (e.g. ``backbones.build_for_fit``). The weights end in ``classifier``'s layers.
    """
    logged = PredictionLog(
        classifier.inputs,
        classifier.output,
        samples=len(y),
        epochs=epochs,
        steps_per_epoch=math.ceil(len(y) / batch_size),
        name=classifier.name,
    )
    logged.compile(**compile_kwargs)
    if before_fit is not None:
        before_fit(logged)
    rows = np.arange(len(y), dtype=np.int32)
    logged.fit(x, (y, rows), batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose)
    return logged.predictions
