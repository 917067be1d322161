"""Profiles: named, frozen, validated settings; the paper profile is the paper's set-up."""

import dataclasses

import pytest

from mecl_utils.protocol.profiles import PROFILES, get_profile


def test_the_three_profiles_exist():
    assert list(PROFILES) == ["smoke", "book", "paper"]


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid profiles: smoke, book, paper"):
        get_profile("laptop")


def test_profiles_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_profile("smoke").seed = 3


def test_paper_profile_is_the_paper_setup():
    paper = get_profile("paper")
    assert paper.datasets == ("cifar10", "cifar100")
    assert paper.backbones == ("densenet201", "mobilenet", "resnet152", "inceptionv3")
    assert paper.teachers == ("inceptionv3", "efficientnetb7")
    assert paper.learning_rates == (1e-1, 0.12, 1e-2, 1e-3, 1e-4, 1e-5)
    assert paper.optimizers == ("sgd", "adam")
    assert paper.pacings == ("FEP(100)", "FEP(200)", "FEP(300)", "SSP(300)")
    assert paper.repetitions == 5
    assert paper.pretrained and paper.image_size is None


def test_book_profile_is_mobilenet_025_on_cifar10_with_two_teachers():
    book = get_profile("book")
    assert (book.datasets, book.backbones, book.mobilenet_alpha) == (("cifar10",), ("mobilenet",), 0.25)
    assert "self" in book.teachers and len(book.teachers) == 2
    assert book.repetitions >= 3


def test_overrides_replace_settings():
    assert get_profile("smoke", seed=5, repetitions=3).seed == 5


def test_unknown_override_is_rejected_with_the_valid_names():
    with pytest.raises(ValueError, match=r"setting\(s\) \['epochs'\]; valid settings: name, datasets"):
        get_profile("smoke", epochs=3)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"pacings": ("FEP(50)",)}, r"pacings: unknown value\(s\) \['FEP\(50\)'\]"),
        ({"datasets": ("mnist",)}, r"datasets: unknown value\(s\) \['mnist'\]; valid values: cifar10, "),
        ({"optimizers": ("rmsprop",)}, r"optimizers: unknown value\(s\)"),
        ({"repetitions": 0}, "repetitions must be a positive integer"),
        ({"main_repetitions": 0}, "main_repetitions must be a positive integer"),
        ({"learning_rates": (0.1, -1e-3)}, "learning_rates must be positive"),
        ({"plateau_factor": 1.5}, r"plateau_factor must be in \(0, 1\)"),
        ({"teachers": ()}, "teachers must be a non-empty tuple"),
        ({"teachers": ("self", "tiny_cnn")}, "name the backbone 'tiny_cnn' twice"),
        ({"vanilla_sampling": "shuffled"}, "vanilla_sampling must be one of"),
        ({"class_balance": 1}, "class_balance must be True or False"),
    ],
)
def test_bad_settings_are_rejected(override, message):
    with pytest.raises(ValueError, match=message):
        get_profile("smoke", **override)


def test_the_main_comparison_gets_at_least_its_own_repetitions():
    book = get_profile("book", repetitions=3, main_repetitions=11)
    assert [book.repetitions_of(m) for m in ("vanilla", "curriculum", "anti", "random")] == [11, 11, 3, 3]
    assert book.replace(repetitions=15).repetitions_of("curriculum") == 15


def test_without_main_repetitions_every_method_has_the_same_count():
    smoke = get_profile("smoke", repetitions=4, main_repetitions=None)
    assert {smoke.repetitions_of(m) for m in ("vanilla", "curriculum", "anti", "random")} == {4}
