"""The curriculum mini-batch process of Fig. 2."""

import keras
import numpy as np
import pytest

from mecl_utils.curriculum import pacing
from mecl_utils.curriculum.rows import LazyRows, RowSubset
from mecl_utils.curriculum.sampler import (
    CurriculumBatches,
    CurriculumSampler,
    curriculum_dataset,
    sampler_for_method,
)
from mecl_utils.curriculum.sorting import order

N, BATCH = 1000, 10
LOSSES = np.random.default_rng(0).random(N)
FEP = pacing.FixedExponential(s=0.04, r=1.9, delta=20)  # reaches λ = 1 at t = 120


def test_batches_per_epoch_is_ceil_n_over_batch_size():
    assert CurriculumSampler(np.arange(1001), 10).batches_per_epoch == 101


@pytest.mark.parametrize("t", [0, 19, 20, 45, 99, 119, 120, 500])
def test_batches_only_draw_from_the_allowed_prefix(t):
    sampler = sampler_for_method("curriculum", LOSSES, BATCH, FEP, seed=1)
    allowed = set(sampler.ordering[: int(np.ceil(FEP(t) * N - 1e-9))].tolist())
    batch = sampler.batch(t)
    assert len(batch) == BATCH
    assert len(set(batch.tolist())) == BATCH  # without replacement inside the batch
    assert set(batch.tolist()) <= allowed


def test_prefix_grows_as_the_pacing_says():
    sampler = CurriculumSampler(np.arange(N), BATCH, FEP)
    sizes = [sampler.window(t)[1] for t in (0, 20, 40, 60, 80, 100, 120)]
    assert sizes == [40, 76, 145, 275, 522, 991, 1000]


def test_window_is_never_smaller_than_a_batch():
    sampler = CurriculumSampler(np.arange(100), 32, pacing.SingleStep(s=0.05, delta=10))
    assert sampler.window(0) == (0, 32)


def test_one_pass_window_is_the_newest_bucket():
    sampler = CurriculumSampler(np.arange(10), 2, pacing.OnePass(n_buckets=5, delta=2))
    assert [sampler.window(t) for t in (0, 2, 4, 9)] == [(0, 2), (2, 4), (4, 6), (8, 10)]
    assert sorted(sampler.batch(4).tolist()) == [4, 5]


def test_random_curriculum_covers_all_data_once_lambda_is_one():
    sampler = sampler_for_method("random", LOSSES[:50], 5, pacing.SingleStep(s=0.3, delta=10), seed=2)
    early = set(np.concatenate([sampler.batch(t) for t in range(10)]).tolist())
    late = set(np.concatenate([sampler.batch(t) for t in range(10, 200)]).tolist())
    assert early <= set(sampler.ordering[:15].tolist())
    assert late == set(range(50))


def test_two_runs_with_one_seed_are_identical():
    first = sampler_for_method("curriculum", LOSSES, BATCH, FEP, seed=7)
    second = sampler_for_method("curriculum", LOSSES, BATCH, FEP, seed=7)
    for t in range(0, 300, 13):
        np.testing.assert_array_equal(first.batch(t), second.batch(t))


def test_different_seeds_give_different_batches():
    first = sampler_for_method("curriculum", LOSSES, BATCH, FEP, seed=7)
    second = sampler_for_method("curriculum", LOSSES, BATCH, FEP, seed=8)
    assert any(not np.array_equal(first.batch(t), second.batch(t)) for t in range(5))


def test_anti_curriculum_starts_with_the_highest_loss_samples():
    sampler = sampler_for_method("anti", LOSSES, BATCH, FEP, seed=0)
    hardest = set(np.argsort(LOSSES)[-40:].tolist())  # λ(0) · N = 40
    assert set(sampler.batch(0).tolist()) <= hardest
    assert set(sampler.batch(19).tolist()) <= hardest


def test_vanilla_epoch_is_a_shuffled_pass_over_all_data_with_epoch_sampling():
    sampler = sampler_for_method("vanilla", np.zeros(25), 10, None, seed=0, vanilla_sampling="epochs")
    batches = sampler.epoch(3)
    assert [len(b) for b in batches] == [10, 10, 5]
    assert sorted(np.concatenate(batches).tolist()) == list(range(25))
    assert not np.array_equal(np.concatenate(batches), np.concatenate(sampler.epoch(4)))


def test_vanilla_through_the_paced_sampler_draws_uniformly():
    n, batch, steps = 50, 10, 5_000
    sampler = sampler_for_method("vanilla", np.zeros(n), batch, None, seed=3)
    assert sampler.pacing == pacing.FULL
    batches = [sampler.batch(t) for t in range(steps)]
    assert all(len(set(b.tolist())) == batch for b in batches)  # without replacement inside a batch
    counts = np.bincount(np.concatenate(batches), minlength=n)
    expected = steps * batch / n
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 100  # 49 degrees of freedom: p < 1e-5 above 100
    assert counts.min() > 0.8 * expected


def test_vanilla_and_random_curriculum_draw_batches_the_same_way_once_lambda_is_1():
    losses = np.zeros(30)
    vanilla = sampler_for_method("vanilla", losses, 6, None, seed=5)
    random = sampler_for_method("random", losses, 6, pacing.FULL, seed=5, order_seed=9)
    positions = {tuple(np.sort(vanilla.batch(t))) for t in range(3)}
    assert positions == {tuple(np.sort(np.argsort(random.ordering)[random.batch(t)])) for t in range(3)}


def test_random_order_and_batches_come_from_different_streams():
    sampler = sampler_for_method("random", np.zeros(40), 40, pacing.FULL, seed=5)
    first_batch_generator = np.random.default_rng([5, 0]).permutation(40)
    assert not np.array_equal(sampler.ordering, first_batch_generator)
    assert not np.array_equal(sampler.ordering, np.random.default_rng(5).permutation(40))


def test_unknown_vanilla_sampling_is_rejected():
    with pytest.raises(ValueError, match="paced, epochs"):
        sampler_for_method("vanilla", np.zeros(5), 2, None, vanilla_sampling="shuffled")


def test_paced_method_without_pacing_is_an_error():
    with pytest.raises(ValueError, match="needs a pacing function"):
        sampler_for_method("curriculum", LOSSES, BATCH, None)


def test_bad_batch_size_is_rejected():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        CurriculumSampler(np.arange(10), 0)


def test_negative_batch_index_is_rejected():
    with pytest.raises(ValueError, match="t must be >= 0"):
        CurriculumSampler(np.arange(10), 2).batch(-1)


def test_pydataset_indexed_by_hand_gives_the_batches_of_the_current_epoch():
    x = np.arange(40, dtype="float32").reshape(40, 1)
    sampler = CurriculumSampler(order("curriculum", np.arange(40.0)), 4, FEP, seed=0)
    xb, yb = CurriculumBatches(x, x[:, 0], sampler)[2]
    np.testing.assert_array_equal(xb[:, 0], sampler.batch(2))
    np.testing.assert_array_equal(yb, sampler.batch(2))


def test_pydataset_refuses_parallel_workers():
    with pytest.raises(ValueError, match="workers=1"):
        CurriculumBatches(np.zeros((4, 1)), np.zeros(4), CurriculumSampler(np.arange(4), 2), workers=2)


def _fit_and_record(sampler, epochs, **fit_kwargs):
    served = []

    class Recording(CurriculumBatches):
        def __getitem__(self, index):
            xb, yb = super().__getitem__(index)
            if self._training:
                served.append(yb.astype(int))
            return xb, yb

    keras.utils.set_random_seed(0)
    x = np.arange(60, dtype="float32").reshape(60, 1)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(Recording(x, x[:, 0], sampler), epochs=epochs, verbose=0, **fit_kwargs)
    return served


def test_keras_fit_trains_on_the_sampler_batches_in_pacing_order():
    # fit() shuffles a PyDataset's batch order by default; the pacing order must survive that.
    sampler = CurriculumSampler(np.arange(60), 6, pacing.SingleStep(s=0.2, delta=10), seed=0)
    served = _fit_and_record(sampler, epochs=2)
    assert len(served) == 20
    for t, got in enumerate(served):
        np.testing.assert_array_equal(got, sampler.batch(t))


def test_tf_dataset_yields_the_sampler_batches_in_order_for_every_epoch():
    x = np.arange(25, dtype="float32").reshape(25, 1)
    sampler = sampler_for_method("vanilla", np.zeros(25), 10, None, seed=4, vanilla_sampling="epochs")
    batches = [yb.numpy().tolist() for _, yb in curriculum_dataset(x, np.arange(25), sampler, epochs=2)]
    assert batches == [sampler.batch(t).tolist() for t in range(6)]
    assert [len(b) for b in batches] == [10, 10, 5, 10, 10, 5]


class CountedRows(LazyRows):
    """Rows of ``x`` read on demand, counting the rows read."""

    def __init__(self, x):
        self.x, self.read = x, []

    def __len__(self):
        return len(self.x)

    @property
    def shape(self):
        return self.x.shape

    def tf_gather(self, rows):
        import tensorflow as tf

        return tf.numpy_function(lambda r: self.read.extend(r) or self.x[r], [rows], tf.float32)


def test_tf_dataset_reads_lazy_rows_batch_by_batch():
    x = np.arange(100, dtype="float32").reshape(100, 1)
    lazy = CountedRows(x)
    sampler = CurriculumSampler(np.arange(100), 10, pacing.SingleStep(s=0.2, delta=10), seed=0)
    got = [xb.numpy() for xb, _ in curriculum_dataset(lazy, np.arange(100), sampler, epochs=1)]
    batches = [sampler.batch(t) for t in range(10)]
    np.testing.assert_array_equal(np.concatenate(got), x[np.concatenate(batches)])
    assert sorted(lazy.read) == sorted(np.concatenate(batches))  # each batch's rows, nothing more


def test_a_subset_of_lazy_rows_reads_the_rows_it_names_from_the_whole():
    x = np.arange(100, dtype="float32").reshape(100, 1)
    subset = RowSubset(CountedRows(x), np.array([5, 7, 90]))
    assert len(subset) == 3 and subset.shape == (3, 1)
    got = np.concatenate([batch.numpy() for batch in subset.dataset(batch_size=2)])
    np.testing.assert_array_equal(got, x[[5, 7, 90]])


def test_tf_dataset_runs_without_an_autotuning_thread():
    # Deleting an iterator waits for tf.data's autotuning thread, which left workers idle for seconds.
    sampler = CurriculumSampler(np.arange(10), 5)
    data = curriculum_dataset(np.zeros((10, 1), "float32"), np.arange(10), sampler, epochs=1)
    assert data.options().autotune.enabled is False


def test_tf_dataset_can_start_at_a_later_batch():
    x = np.arange(60, dtype="float32").reshape(60, 1)
    sampler = CurriculumSampler(np.arange(60), 6, pacing.SingleStep(s=0.2, delta=10), seed=0)
    data = curriculum_dataset(x, np.arange(60), sampler, epochs=1, start_batch=10)
    assert [yb.numpy().tolist() for _, yb in data] == [sampler.batch(t).tolist() for t in range(10, 20)]
