"""One paper case at reduced size on a GPU: feature and branch throughput, GPU memory, the whole grid's time.

The paper profile (Sec. III) is 16 cases (4 backbones × CIFAR-10/100 × 2 branches), each with 12 vanilla
search runs, 8 curriculum search runs and 5 repetitions × 4 methods of 100 epochs. This measures, for one
case, on whatever device TensorFlow sees:
- feature extraction: images/s of the backbone (native input size, random weights: the throughput does not
  depend on them) up to the branch layer, as ``features.extract_features`` computes them;
- branch training: images/s of one vanilla run (``branch_runs.train_run``, the code the grid runs) on those
  features, over ``--epochs`` epochs of ``--images`` images;
- peak GPU memory (TensorFlow's allocator), when there is a GPU;
and prints the estimated wall time of the whole paper grid's branch runs on ``--gpus`` GPUs with
``engine.GPU_SHARE`` of a GPU per run, plus the feature extraction of every case. Backbone and teacher
fine-tuning (20 epochs each) is estimated from the extraction rate with a training/inference factor of 3,
stated as such. The estimate is arithmetic on measured rates, not a measurement of the grid.

    .venv/bin/python benchmarks/paper_gpu.py [--backbone densenet201] [--branch 1] [--images 2048]
        [--epochs 2] [--gpus 1] [--image-size N (default native; small for a CPU check)]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mecl_utils.networks.backbones import build_classifier, network_spec
from mecl_utils.networks.branches import branch_layer
from mecl_utils.protocol.branch_runs import train_run
from mecl_utils.protocol.features import extract_features
from mecl_utils.protocol.profiles import get_profile
from mecl_utils.protocol.runs import Case, CaseData, RunSpec
from mecl_utils.protocol.stages import planned_runs
from mecl_utils.run.engine import GPU_SHARE

CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000
TRAIN_OVER_INFERENCE = 3.0  # forward + backward ≈ 3 forwards: a rule of thumb, not measured here


def gpu_report():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return tf, names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="densenet201")
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100"])
    parser.add_argument("--branch", type=int, default=1)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=None)
    args = parser.parse_args()

    tf, gpus = gpu_report()
    print(f"devices: {', '.join(gpus) or 'no GPU (CPU only)'}")
    paper = get_profile("paper")
    classes = 10 if args.dataset == "cifar10" else 100
    size = args.image_size or network_spec(args.backbone).native_size
    classifier = build_classifier(args.backbone, classes, image_size=size, weights=None)
    layer = branch_layer(args.backbone, args.dataset, args.branch)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3)).astype("uint8")

    extract_features(classifier, [layer], images[:64])  # builds and traces the extractor
    start = time.perf_counter()
    features = extract_features(classifier, [layer], images)[layer]
    extract_rate = args.images / (time.perf_counter() - start)
    print(f"{args.backbone} at {size}×{size} up to {layer} {features.shape[1:]}: {extract_rate:,.0f} img/s")

    n_eval = max(64, args.images // 8)
    split_features = {"train": features, "val": features[:n_eval], "hparam": features[:n_eval]}
    split_features["test"] = features[:n_eval]
    labels = {name: rng.integers(0, classes, len(x)) for name, x in split_features.items()}
    data = CaseData(split_features, labels, teacher_losses={}, num_classes=classes, layer=layer)
    profile = paper.replace(branch_epochs=args.epochs)
    case = Case(args.backbone, args.dataset, args.branch)
    spec = RunSpec("vanilla_search", case, "vanilla", "adam", 1e-4, None, None, 0, "hparam")
    start = time.perf_counter()
    train_run(spec, profile, data)
    branch_rate = args.images * args.epochs / (time.perf_counter() - start)
    batch = profile.branch_batch_size
    print(f"branch training ({args.epochs} epochs, batch {batch}): {branch_rate:,.0f} img/s")
    if gpus:
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        print(f"peak GPU memory: {peak / 2**30:.2f} GiB")

    cases = len(paper.backbones) * len(paper.datasets) * len(paper.branch_numbers)
    n_train = CIFAR_TRAIN - paper.n_val - paper.n_hparam
    runs = cases * planned_runs(paper)
    parallel = max(1, args.gpus) * (round(1 / GPU_SHARE) if gpus else 1)
    branch_hours = runs * paper.branch_epochs * n_train / branch_rate / parallel / 3600
    extracted = len(paper.backbones) * len(paper.datasets) * (CIFAR_TRAIN + CIFAR_TEST)
    extract_hours = extracted / extract_rate / args.gpus / 3600
    networks = len(paper.backbones) + len(paper.teachers)
    tune_hours = networks * len(paper.datasets) * paper.backbone_epochs * n_train * TRAIN_OVER_INFERENCE
    tune_hours /= extract_rate * args.gpus * 3600
    print(f"paper grid: {runs} branch runs × {paper.branch_epochs} epochs × {n_train} images")
    where = f"{args.gpus} GPU(s)" if gpus else "this CPU"
    print(f"  branch runs, {parallel} at a time on {where}: {branch_hours:,.1f} h (this case's rate)")
    print(f"  features of every backbone: {extract_hours:,.1f} h (this backbone's rate)")
    print(
        f"  fine-tuning {networks} networks × {len(paper.datasets)} data sets: about {tune_hours:,.1f} h "
        f"(rule of thumb: training ≈ {TRAIN_OVER_INFERENCE:g}× inference)"
    )


if __name__ == "__main__":
    main()
