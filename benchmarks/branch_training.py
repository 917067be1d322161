"""Branch training throughput: the cached-feature engine against the naive way, at both book placements.

The naive way is what a reader would write first: the frozen MobileNet runs inside the training graph and
every batch of images goes through it before the branch. The engine computes the backbone's activations
once (``features``) and trains the branch on those rows. Both use the same branch, batch size, images,
sampler and epochs here, in one process; images/s counts training images per second of the second of two
epochs (the first traces the step; validation on 256 rows is included), excluding the one-off feature
extraction, which is timed and printed separately. Engine and naive runs alternate ``--repeats`` times and
the best of each is kept: on the project's 2-vCPU machine an identical run sometimes keeps both vCPUs busy
and sometimes only one (benchmarks/README.md), and the best run is the one the machine did not slow.

GFLOP/s: the branch's training FLOPs are counted from its layers (a multiply-add is 2 FLOPs; a training
step costs about 3× the forward pass: forward, gradient w.r.t. activations, gradient w.r.t. weights, except
that the first layer needs no gradient w.r.t. its input, the fixed features) and divided by the measured
time. Two references: the CPU's fp32 peak, estimated as cores × clock × FLOPs per cycle per core, with 32
FLOPs/cycle on AMD Zen 4 (two 256-bit FMA pipes: 2 × 8 lanes × 2, for AVX2 and AVX-512 alike) and 64 on
Intel cores with two 512-bit FMA units, the clock read from /proc/cpuinfo; and what NumPy's BLAS measures
here for a large fp32 matrix product (best of 3), a peak that software actually reaches on this machine.

    .venv/bin/python benchmarks/branch_training.py [--images 4096] [--batch-size 64] [--image-size 64]
"""

from __future__ import annotations

import argparse
import os
import re
import time

import keras
import numpy as np

from mecl_utils.curriculum.sampler import CurriculumSampler
from mecl_utils.networks.backbones import build_classifier, mobilenet_weights_path
from mecl_utils.networks.branches import PLACEMENTS
from mecl_utils.protocol.features import extract_features
from mecl_utils.training.classifier_wise import BranchRun, initial_branch, train_branch


def branch_forward_flops(branch: keras.Model) -> int:
    """Multiply-adds × 2 of one forward pass of the Fig. 7 branch on one sample."""
    flops = 0
    for layer in branch.layers:
        if isinstance(layer, keras.layers.Conv2D):
            out_h, out_w, filters = layer.output.shape[1:]
            kh, kw = layer.kernel_size
            flops += 2 * out_h * out_w * filters * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input.shape[-1] * layer.units
    return flops


def training_flops(branch: keras.Model) -> int:
    """FLOPs of one training step on one sample: 3× forward, less the first layer's input gradient."""
    first = next(layer for layer in branch.layers if isinstance(layer, keras.layers.Conv2D))
    kh, kw = first.kernel_size
    out_h, out_w, filters = first.output.shape[1:]
    return 3 * branch_forward_flops(branch) - 2 * out_h * out_w * filters * kh * kw * first.input.shape[-1]


def sgemm_gflops(n: int = 2048) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def cpu_peak_gflops() -> tuple[float, str]:
    info = open("/proc/cpuinfo").read()
    mhz = max(float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", info))
    amd = "AuthenticAMD" in info
    per_cycle = 32 if amd else 64
    cores = os.cpu_count() or 1
    return cores * mhz / 1000 * per_cycle, f"{cores} cores × {mhz / 1000:.2f} GHz × {per_cycle} FLOP/cycle"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images)
    classifier = build_classifier(
        "mobilenet", 10, image_size=args.image_size, weights=mobilenet_weights_path(alpha=0.25), alpha=0.25
    )
    peak, peak_text = cpu_peak_gflops()
    sgemm = sgemm_gflops()
    print(
        f"CPU fp32 peak estimate: {peak:.0f} GFLOP/s ({peak_text}); NumPy sgemm measured: {sgemm:.0f} GFLOP/s"
    )
    print(
        f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}, best of {args.repeats} runs each"
    )
    run = BranchRun(
        "adam", 1e-3, epochs=2, plateau_patience=5, plateau_factor=0.5, init_seed=0, dropout_seed=1
    )
    sampler = CurriculumSampler(np.arange(args.images), args.batch_size, seed=0)
    summary = []
    for number in (1, 2):
        layer = PLACEMENTS["mobilenet", "cifar10", number]
        start = time.perf_counter()
        features = extract_features(classifier, [layer], images)[layer]
        extraction = args.images / (time.perf_counter() - start)
        frozen = keras.Model(classifier.inputs, classifier.get_layer(layer).output)
        small = (features[:256], labels[:256])
        engine_rates, naive_rates, accuracies = [], [], {}
        for _ in range(args.repeats):
            engine = train_branch(run, sampler, (features, labels), small, small, num_classes=10)
            naive = train_branch(
                run, sampler, (images, labels), (images[:256], labels[:256]), (images[:256], labels[:256]),
                num_classes=10, frozen_backbone=frozen,
            )  # fmt: skip
            # The second epoch: the first one includes tracing the training step.
            engine_rates.append(args.images / engine.epoch_seconds[-1])
            naive_rates.append(args.images / naive.epoch_seconds[-1])
            accuracies = {"engine": engine.accuracy, "naive": naive.accuracy}
        engine_rate, naive_rate = max(engine_rates), max(naive_rates)
        flops = training_flops(initial_branch(features.shape[1:], 10, 0))
        gflops = flops * engine_rate / 1e9
        ratio = engine_rate / naive_rate
        print(f"branch {number} ({layer}, features {features.shape[1:]}):")
        print(f"  feature extraction {extraction:,.0f} img/s (once per split, then cached)")
        print(f"  engine {engine_rate:,.0f} img/s, naive {naive_rate:,.0f} img/s, ratio {ratio:.2f}x")
        print("  all runs, img/s: engine " + ", ".join(f"{r:,.0f}" for r in engine_rates) + "; naive "
              + ", ".join(f"{r:,.0f}" for r in naive_rates))  # fmt: skip
        engine_accuracy, naive_accuracy = accuracies["engine"], accuracies["naive"]
        print(f"  accuracy on 256 training rows: engine {engine_accuracy:.3f}, naive {naive_accuracy:.3f}")
        share, share_sgemm = 100 * gflops / peak, 100 * gflops / sgemm
        print(
            f"  branch step {flops / 1e6:.1f} MFLOP/img: {gflops:.1f} GFLOP/s, {share:.0f} % of the "
            f"estimated peak, {share_sgemm:.0f} % of measured sgemm"
        )
        summary.append(f"branch {number} {engine_rate / naive_rate:.2f}x")
    print("summary: engine/naive images/s " + ", ".join(summary))


if __name__ == "__main__":
    main()
