"""Real early exit: the classifier cut at its exits, run stage by stage, timed against the plain one."""

import keras
import numpy as np
import pytest

from mecl_utils.exits import latency


def _chain_classifier():
    images = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block1_out")(images)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="block2_out")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(3, activation="softmax")(x))


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize(
    ("leave", "images_per_stage"),
    [
        ([0, 1, 2, 0, 2, 1, 0, 2], [8, 5, 3]),  # three leave at exit 0: five go on, three to the end
        ([0] * 8, [8, 0, 0]),
        ([2] * 8, [8, 8, 8]),  # every image to the last exit: every stage runs them all
    ],
)
def test_staged_latency_runs_a_stage_only_on_the_images_that_have_not_left(
    batch_size, leave, images_per_stage, monkeypatch
):
    images = np.random.default_rng(0).random((8, 8, 8, 3)).astype("float32")
    ran, run_stages = [], latency.run_stages
    monkeypatch.setattr(latency, "run_stages", lambda *args: ran.append(run_stages(*args)) or ran[-1])
    seconds = latency.staged_latency(
        _chain_classifier(), ("block1_out", "block2_out"), images, leave, batch_size=batch_size, repeats=1
    )
    assert set(seconds) == {"plain", "staged"} and all(value > 0 for value in seconds.values())
    assert len(ran) == 2 and all(counts.tolist() == images_per_stage for counts in ran)  # traced, then timed


def test_stages_cut_the_classifier_at_its_exits():
    classifier = _chain_classifier()
    segments, heads = latency._stages(classifier, ("block1_out", "block2_out"), 3)
    x = np.random.default_rng(1).random((2, 8, 8, 3)).astype("float32")
    staged = segments[2](segments[1](segments[0](x)))
    np.testing.assert_allclose(staged, classifier(x), rtol=1e-5, atol=1e-6)
    assert [head.output.shape[-1] for head in heads] == [3, 3]
