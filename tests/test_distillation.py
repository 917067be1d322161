"""Tests for training.distillation: the loss against a hand computation, targets, final-exit logits."""

import numpy as np
import pytest

from mecl_utils.training.distillation import (
    Distillation,
    DistillationLoss,
    final_exit_logits,
    label_accuracy,
    pack_targets,
)

PROBABILITIES = np.array([[0.7, 0.2, 0.1], [0.05, 0.15, 0.8]], dtype=np.float32)
TEACHER_LOGITS = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
LABELS = np.array([0, 1])


def by_hand(weight, temperature):
    """(1 − C)·CE + C·T²·KL(teacher ‖ student), averaged over the batch, in float64 NumPy."""

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p = PROBABILITIES.astype(np.float64)
    hard = -np.log(p[np.arange(2), LABELS])
    student = softmax(np.log(p) / temperature)
    teacher = softmax(TEACHER_LOGITS / temperature)
    kl = (teacher * np.log(teacher / student)).sum(axis=1)
    return float(np.mean((1 - weight) * hard + weight * temperature**2 * kl))


@pytest.mark.parametrize(("weight", "temperature"), [(0.5, 4.0), (0.0, 4.0), (1.0, 1.0), (0.3, 2.5)])
def test_the_loss_equals_a_hand_computation(weight, temperature):
    loss = DistillationLoss(weight, temperature)(pack_targets(LABELS, TEACHER_LOGITS), PROBABILITIES)
    assert float(loss) == pytest.approx(by_hand(weight, temperature), rel=1e-5)


def test_with_weight_zero_the_loss_is_keras_cross_entropy():
    import keras

    plain = keras.losses.SparseCategoricalCrossentropy()(LABELS, PROBABILITIES)
    distilled = DistillationLoss(0.0, 4.0)(pack_targets(LABELS, TEACHER_LOGITS), PROBABILITIES)
    assert float(distilled) == pytest.approx(float(plain), rel=1e-6)


def test_a_student_that_matches_the_teacher_pays_no_soft_loss():
    teacher = np.log(PROBABILITIES.astype(np.float64)) + 3.0  # logits up to a constant per row
    loss = DistillationLoss(1.0, 4.0)(pack_targets(LABELS, teacher), PROBABILITIES)
    assert float(loss) == pytest.approx(0.0, abs=1e-5)


def test_packed_targets_hold_the_label_then_the_logits():
    packed = pack_targets(LABELS, TEACHER_LOGITS)
    assert packed.dtype == np.float32
    np.testing.assert_array_equal(packed[:, 0], [0, 1])
    np.testing.assert_array_equal(packed[:, 1:], TEACHER_LOGITS.astype(np.float32))


def test_packing_rejects_logits_of_another_split():
    with pytest.raises(ValueError, match="one row per label"):
        pack_targets(LABELS, TEACHER_LOGITS[:1])


def test_packing_rejects_labels_outside_the_teachers_classes():
    with pytest.raises(ValueError, match=r"0\.\.2"):
        pack_targets(np.array([0, 3]), TEACHER_LOGITS)


def test_label_accuracy_reads_the_label_column_under_keras_name():
    metric = label_accuracy()
    metric.update_state(pack_targets(LABELS, TEACHER_LOGITS), PROBABILITIES)
    assert metric.name == "accuracy"
    assert float(metric.result()) == 0.5  # row 0 right (argmax 0), row 1 wrong (argmax 2, label 1)


@pytest.mark.parametrize(
    ("weight", "temperature", "message"),
    [(1.5, 4.0, r"\[0, 1\]"), (0.5, 0.0, "positive"), ("0.5", 4.0, "a number"), (True, 4.0, "a number")],
)
def test_bad_settings_are_rejected(weight, temperature, message):
    with pytest.raises(ValueError, match=message):
        Distillation(weight, temperature)


def test_final_exit_logits_are_computed_once(tmp_path, monkeypatch, smoke_digits):
    import keras

    from mecl_utils.networks.backbones import build_tiny_cnn

    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))
    dataset, splits = smoke_digits
    keras.utils.set_random_seed(0)
    model = build_tiny_cnn(dataset.num_classes, input_shape=dataset.x_train.shape[1:])
    first = final_exit_logits(model, "key", {"train": splits.train, "val": splits.val})
    keras.utils.set_random_seed(1)
    other = build_tiny_cnn(dataset.num_classes, input_shape=dataset.x_train.shape[1:])
    again = final_exit_logits(other, "key", {"train": splits.train, "val": splits.val})  # cached: same
    assert first["train"].shape == (len(splits.train), dataset.num_classes)
    np.testing.assert_array_equal(first["val"], again["val"])
    probabilities = model.predict(splits.val.x, verbose=0)
    np.testing.assert_allclose(keras.ops.softmax(first["val"]), probabilities, atol=1e-5)


def test_the_soft_term_follows_a_confident_teacher_past_the_hard_terms_clip():
    # Probabilities below 1e-7: a clip there would flatten the student's softened outputs and hide them.
    confident = np.array([[1 - 2e-12, 1e-12, 1e-12]], dtype=np.float64)
    teacher = np.log(confident)
    loss = DistillationLoss(1.0, 4.0)(pack_targets(np.array([0]), teacher), confident.astype(np.float32))
    assert float(loss) == pytest.approx(0.0, abs=1e-4)
