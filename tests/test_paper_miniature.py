"""A miniature paper profile end to end on CPU: every paper backbone and teacher, tiny inputs, random weights.

The paper profile's own code path (Table II placements of DenseNet201, MobileNet, ResNet152 and InceptionV3,
teachers InceptionV3 and EfficientNetB7, native architectures) runs through `run_grid` on the embedded Ray
instance, on a CIFAR-10 folder in the official format holding random images. Only the sizes shrink: 75-pixel
inputs (InceptionV3's minimum), a few images, one epoch, one point of each search; and the memory and disk
budgets, so that the feature-mode choice sends the cases to memory and to shards on disk, as `plan` predicts.
"""

import pickle

import numpy as np
import pytest

from mecl_utils.curriculum.sorting import METHODS
from mecl_utils.protocol.plan import grid_plan
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.results import ResultsStore
from mecl_utils.protocol.runs import cases
from mecl_utils.protocol.stages import planned_runs
from mecl_utils.report.table_iv import table_iv
from mecl_utils.run.engine import Engine
from mecl_utils.run.grid import run_grid

pytestmark = pytest.mark.slow

MINIATURE = get_profile(
    "paper",
    datasets=("cifar10",),
    branch_numbers=(1,),  # the first branches already reach all three feature modes
    n_val=10,
    n_hparam=10,
    n_train=20,
    n_test=10,
    image_size=75,
    pretrained=False,
    backbone_epochs=1,
    teacher_epochs=1,
    branch_epochs=1,
    branch_batch_size=8,
    optimizers=("adam",),
    learning_rates=(1e-3,),
    pacings=("FEP(100)",),
    repetitions=1,
)


EXPECTED_MODES = {
    "densenet201": "shards",
    "mobilenet": "memory",
    "resnet152": "shards",
    "inceptionv3": "shards",
}


def write_random_cifar10(parent, per_batch: int = 20, test: int = 20):
    """The official "python version" layout with random pixels, every class in every file."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def dump(name, n):
        content = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [i % 10 for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(content, protocol=3))

    for number in range(1, 6):
        dump(f"data_batch_{number}", per_batch)
    dump("test_batch", test)
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=3))
    return parent


def test_the_miniature_paper_grid_runs_every_backbone_and_teacher(tmp_path, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path / "cache"))
    # Budgets scaled to the miniature's features (2.0-9.8 MiB a case) so that the choice differs between
    # cases: 2 MiB in memory (MobileNet) and 5 MiB of float16 shards on disk (DenseNet201, ResNet152,
    # InceptionV3). The third mode, the cut backbone in every run's training graph, is left to
    # test_feature_modes on the smoke profile: traced here for ResNet152 in each of its 7 runs, it made
    # this test take minutes longer.
    monkeypatch.setenv("MECL_FEATURE_MEMORY_GIB", str(2 / 1024))
    monkeypatch.setenv("MECL_FEATURE_DISK_GIB", str(5 / 1024))
    data_dir = write_random_cifar10(tmp_path / "data")
    planned = {plan.case.label: plan.mode for plan in grid_plan(MINIATURE)}  # the dry run first
    assert set(planned) == {case.label for case in cases(MINIATURE)}
    assert planned == {f"{b}/cifar10/branch 1": m for b, m in EXPECTED_MODES.items()}
    store = ResultsStore(tmp_path / "runs.csv")
    with Engine(2) as engine:
        run_ids, _ = run_grid(MINIATURE, store, data_dir=data_dir, engine=engine)
    assert len(run_ids) == len(store) == 4 * planned_runs(MINIATURE) == 4 * (1 + 2 + len(METHODS))
    rows = store.frame()
    used = rows.groupby(rows["backbone"] + "/" + rows["dataset"] + "/branch " + rows["branch"].astype(str))
    assert used["feature_mode"].agg(lambda modes: "/".join(sorted(set(modes)))).to_dict() == planned
    table = table_iv(rows)
    assert sorted(set(table["backbone"])) == ["densenet201", "inceptionv3", "mobilenet", "resnet152"]
    assert set(rows["teacher"].dropna()) - {""} == {"inceptionv3", "efficientnetb7"}  # "": none
    assert table["Vanilla mean"].between(0, 100).all()
