"""Tests for training.prediction_log: a fit that logs every sample's prediction, at no cost to its weights."""

import keras
import numpy as np

from mecl_utils.networks.backbones import build_tiny_cnn
from mecl_utils.training.prediction_log import UNSEEN, fit_logged

X = np.random.default_rng(0).normal(size=(100, 8, 8, 1)).astype("float32")
Y = np.random.default_rng(1).integers(0, 3, 100)
COMPILE = dict(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def _model() -> keras.Model:
    keras.utils.set_random_seed(5)
    return build_tiny_cnn(3, input_shape=(8, 8, 1), width=4)


def test_a_logged_fit_ends_with_the_weights_of_a_plain_fit_to_the_last_bit():
    plain = _model()
    plain.compile(**COMPILE, steps_per_execution=3)
    plain.fit(X, Y, batch_size=16, epochs=3, shuffle=True, verbose=0)
    logged = _model()
    fit_logged(logged, X, Y, batch_size=16, epochs=3, compile_kwargs={**COMPILE, "steps_per_execution": 3})
    assert all(np.array_equal(a, b) for a, b in zip(plain.get_weights(), logged.get_weights(), strict=True))


def test_the_log_holds_a_class_for_every_sample_in_every_epoch():
    table = fit_logged(_model(), X, Y, batch_size=16, epochs=3, compile_kwargs=COMPILE)
    assert table.shape == (3, 100)
    assert UNSEEN not in table and set(np.unique(table)) <= {0, 1, 2}


def test_the_log_is_what_the_fit_predicted_its_training_accuracy_from():
    seen = []

    class Accuracies(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs["accuracy"])

    model = _model()
    original = keras.Model.fit
    try:  # fit_logged calls fit with its own arguments: add the callback on the way through
        keras.Model.fit = lambda self, *a, **k: original(self, *a, callbacks=[Accuracies()], **k)
        table = fit_logged(model, X, Y, batch_size=16, epochs=2, compile_kwargs=COMPILE)
    finally:
        keras.Model.fit = original
    np.testing.assert_allclose((table == Y[None, :]).mean(axis=1), seen, atol=1e-6)
