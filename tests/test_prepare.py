"""Tests for run.case_networks and run.prepare: backbone and teachers trained side by side, cached."""

import os
import subprocess
import sys

import pytest

from mecl_utils.cache import cache_path
from mecl_utils.protocol import features, trained_networks
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.runs import Case
from mecl_utils.run import case_networks as networks_module
from mecl_utils.run.case_networks import case_networks, network_roles, prepare_grid_networks, prepare_networks
from mecl_utils.run.engine import Engine
from mecl_utils.run.prepare import prepare_case

PROFILE = get_profile("smoke").replace(backbone_epochs=1, teacher_epochs=1)


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MECL_CACHE_DIR", str(tmp_path))  # Ray's workers inherit it
    return tmp_path


def test_workers_train_every_missing_network_into_the_cache(cache_root, smoke_digits, count_fits):
    assert prepare_networks(PROFILE, "tiny_cnn", *smoke_digits, seed=0, workers=2) == [
        "backbone",
        "tiny_cnn_wide",
    ]
    assert count_fits == []  # nothing trained in this process
    for teacher in PROFILE.teachers:  # what this process reads was computed by the workers
        trained_networks.teacher_losses(PROFILE, teacher, "tiny_cnn", *smoke_digits, seed=0)
    trained_networks.trained_backbone(PROFILE, "tiny_cnn", *smoke_digits, seed=0)
    assert count_fits == []


def test_cached_networks_are_skipped(cache_root, smoke_digits):
    assert prepare_networks(PROFILE, "tiny_cnn", *smoke_digits, seed=0, workers=0) == [
        "backbone",
        "tiny_cnn_wide",
    ]
    assert prepare_networks(PROFILE, "tiny_cnn", *smoke_digits, seed=0, workers=0) == []


def test_networks_trained_here_are_scored_without_being_read_back(cache_root, smoke_digits, monkeypatch):
    def read_back(path, **options):
        pytest.fail(f"{path} was read back from the cache")

    monkeypatch.setattr(networks_module.keras.saving, "load_model", read_back)
    assert prepare_networks(PROFILE, "tiny_cnn", *smoke_digits, seed=0, workers=0) == [
        "backbone",
        "tiny_cnn_wide",
    ]


def test_only_the_network_missing_from_the_cache_trains_again(cache_root, smoke_digits):
    prepare_networks(PROFILE, "tiny_cnn", *smoke_digits, seed=0, workers=0)
    wide = trained_networks.network_keys(PROFILE, "tiny_cnn_wide", "tiny_cnn", *smoke_digits, seed=0)
    cache_path("classifier", wide.key, ".keras").unlink()
    assert prepare_networks(PROFILE, "tiny_cnn", *smoke_digits, seed=0, workers=0) == ["tiny_cnn_wide"]


def test_a_cases_networks_come_with_the_keys_of_their_cache_entries(cache_root, smoke_digits):
    networks = case_networks(PROFILE, "tiny_cnn", *smoke_digits, workers=0)
    assert (cache_root / "classifier" / f"{networks.backbone_key}.keras").is_file()
    assert list(networks.teacher_losses) == list(networks.teacher_keys) == ["self", "tiny_cnn_wide"]
    for key in networks.teacher_keys.values():
        assert (cache_root / "teacher_losses" / f"{key}.npz").is_file()


def test_a_grid_trains_every_missing_network_once_before_its_cases(cache_root, monkeypatch):
    trained = []
    monkeypatch.setattr(
        networks_module, "_prepare_job", lambda profile, datasets, seed, job, *_: trained.append(job)
    )
    profile = PROFILE.replace(teachers=("self", "inceptionv3", "efficientnetb7"))
    selected = [Case(backbone, "digits", n) for backbone in ("densenet201", "inceptionv3") for n in (1, 2)]
    with Engine(0) as engine:
        prepare_grid_networks(profile, selected, engine=engine)
    assert trained == [  # two branches share a backbone, two backbones their teacher
        ("densenet201", "digits", "backbone"),
        ("densenet201", "digits", "inceptionv3"),
        ("densenet201", "digits", "efficientnetb7"),
        ("inceptionv3", "digits", "backbone"),
    ]


def test_a_self_taught_paper_case_trains_no_second_network():
    paper = get_profile("paper")
    assert network_roles(paper, "inceptionv3") == ("backbone", "efficientnetb7")
    assert network_roles(paper, "densenet201") == ("backbone", "inceptionv3", "efficientnetb7")


def test_preparing_one_branch_caches_the_features_of_every_branch(cache_root, monkeypatch):
    monkeypatch.setenv("MECL_WORKERS", "0")
    prepare_case(PROFILE, Case("tiny_cnn", "digits", 1))

    def no_extraction(*args, **kwargs):
        raise AssertionError("branch 2's features should have come from the cache")

    monkeypatch.setattr(features, "extract_features", no_extraction)
    assert prepare_case(PROFILE, Case("tiny_cnn", "digits", 2)).layer == "block2_out"


def test_a_script_without_a_main_guard_trains_its_networks_as_ray_tasks(tmp_path):
    # Ray's workers never import the calling script, so it needs no `if __name__ == "__main__":`.
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from mecl_utils.run.case_networks import load_splits, prepare_networks\n"
        "from mecl_utils.protocol.profiles import get_profile\n"
        "profile = get_profile('smoke').replace(backbone_epochs=1, teacher_epochs=1)\n"
        "print(prepare_networks(profile, 'tiny_cnn', *load_splits(profile, 'digits'), seed=0, workers=2))\n"
    )
    env = {**os.environ, "MECL_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['backbone', 'tiny_cnn_wide']"
