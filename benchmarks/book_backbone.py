"""The book profile's backbone: test accuracy after fine-tuning, feature shapes at the branch placements.

Trains (or loads from the cache) MobileNetV1 α = 0.25 with ImageNet weights on the book profile's CIFAR-10
training split, evaluates it on the test split, and prints the feature shape at each Table II placement,
with the wall time of every stage. Needs CIFAR-10 (``--data-dir`` or ``$MECL_DATA_DIR``).

    .venv/bin/python benchmarks/book_backbone.py --data-dir DIR
"""

import argparse
import time

from mecl_utils.networks.backbones import backbone_model
from mecl_utils.networks.branches import branch_layer
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.trained_networks import evaluate, trained_backbone, trained_teacher
from mecl_utils.run.case_networks import load_splits, prepare_networks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--profile", default="book")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    network, dataset_name = profile.backbones[0], profile.datasets[0]

    start = time.perf_counter()
    dataset, splits = load_splits(profile, dataset_name, args.data_dir)
    print(
        f"data: {dataset.name} from {dataset.source}; train/val/hparam/test = "
        f"{len(splits.train)}/{len(splits.val)}/{len(splits.hparam)}/{len(splits.test)} "
        f"({time.perf_counter() - start:.1f} s)"
    )

    start = time.perf_counter()
    # As the book does: backbone and teachers side by side, so the cache holds the same weights.
    trained = prepare_networks(profile, network, dataset, splits, seed=profile.seed)
    backbone = trained_backbone(profile, network, dataset, splits, seed=profile.seed)
    print(
        f"backbone {network} (image size {profile.image_size}, alpha {profile.mobilenet_alpha}) and "
        f"teachers: {'trained: ' + ', '.join(trained) if trained else 'loaded'} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    start = time.perf_counter()
    accuracy = evaluate(backbone, splits.test)
    print(
        f"backbone test accuracy: {accuracy:.4f} on {len(splits.test)} images "
        f"({len(splits.test) / (time.perf_counter() - start):.0f} images/s)"
    )
    print(f"backbone parameters: {backbone_model(backbone).count_params():,}")
    for number in profile.branch_numbers:
        layer = branch_layer(network, dataset_name, number)
        shape = tuple(backbone.get_layer(layer).output.shape[1:])
        print(f"branch {number}: after {layer}, feature shape {shape}")
    for teacher in profile.teachers:
        start = time.perf_counter()
        model = trained_teacher(profile, teacher, network, dataset, splits, seed=profile.seed)
        print(
            f"teacher {teacher}: test accuracy {evaluate(model, splits.test):.4f} "
            f"({time.perf_counter() - start:.1f} s to load and evaluate)"
        )
    print(f"summary: {network} test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
