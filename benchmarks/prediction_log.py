"""The backbone's fine-tuning with its prediction log (forgetting events) against a plain ``fit``.

``trained_networks.train_classifier`` fine-tunes through ``prediction_log.fit_logged``: the training step
also writes each sample's predicted class into an (epochs, samples) table, from the outputs it computed
anyway. This measures what that costs. Each side runs in a fresh process (TensorFlow's default threads, as
in a notebook kernel): seed, build the profile's backbone, compile as ``train_classifier`` does, build for
fit, fit ``backbone_epochs`` epochs on the case's training split; "plain" calls ``fit`` itself, "logged"
``fit_logged``. Sides alternate, and the weights of the two sides are compared bit for bit.

    .venv/bin/python benchmarks/prediction_log.py                                   # smoke: tiny CNN, digits
    .venv/bin/python benchmarks/prediction_log.py --profile book --data-dir DIR     # MobileNet, CIFAR-10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys


def fine_tune(profile_name: str, data_dir: str | None, logged: bool) -> dict:
    import time

    import keras
    import numpy as np

    from mecl_utils.networks.backbones import build_for_fit
    from mecl_utils.protocol import trained_networks as tn
    from mecl_utils.protocol.profiles import get_profile
    from mecl_utils.run.case_networks import load_splits
    from mecl_utils.training.execution import steps_per_execution
    from mecl_utils.training.prediction_log import fit_logged

    profile = get_profile(profile_name)
    dataset, splits = load_splits(profile, profile.datasets[0], data_dir)
    keys = tn.network_keys(profile, "self", profile.backbones[0], dataset, splits, seed=profile.seed)
    parts, x, y = keys.parts, splits.train.x, splits.train.y
    compile_kwargs = dict(
        optimizer=keras.optimizers.Adam(profile.backbone_learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution(len(y), parts["batch_size"]),
    )
    keras.utils.set_random_seed(parts["seed"])
    model = tn.build_network(profile, keys.network, dataset)
    start = time.perf_counter()
    if logged:
        fit_logged(
            model, x, y, batch_size=parts["batch_size"], epochs=parts["epochs"],
            compile_kwargs=compile_kwargs, before_fit=lambda m: build_for_fit(m, (x, y)),
        )  # fmt: skip
    else:
        model.compile(**compile_kwargs)
        build_for_fit(model, (x, y))
        model.fit(x, y, batch_size=parts["batch_size"], epochs=parts["epochs"], shuffle=True, verbose=0)
    seconds = time.perf_counter() - start
    digest = float(sum(np.abs(w).astype(np.float64).sum() for w in model.get_weights()))
    return {"seconds": seconds, "weights": repr(digest), "images": len(y), "epochs": parts["epochs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["smoke", "book"], default="smoke")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--repeats", type=int, default=2, help="fine-tunes per side (default: 2)")
    parser.add_argument("--child", choices=["plain", "logged"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fine_tune(args.profile, args.data_dir, args.child == "logged")))
        return
    seconds: dict[str, list[float]] = {"plain": [], "logged": []}
    weights: dict[str, set[str]] = {"plain": set(), "logged": set()}
    for repeat in range(args.repeats):
        for side in ("plain", "logged") if repeat % 2 == 0 else ("logged", "plain"):
            command = [sys.executable, __file__, "--profile", args.profile, "--child", side]
            if args.data_dir:
                command += ["--data-dir", args.data_dir]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            seconds[side].append(result["seconds"])
            weights[side].add(result["weights"])
            size = f"{result['images']} images × {result['epochs']} epochs"
            print(f"{side:6s} {result['seconds']:7.1f} s  ({size})")
    plain, logged = statistics.median(seconds["plain"]), statistics.median(seconds["logged"])
    print(f"median: plain {plain:.1f} s, logged {logged:.1f} s, logged/plain {logged / plain:.3f}")
    same = len(weights["plain"] | weights["logged"]) == 1
    print("weights: the same on both sides" if same else f"weights DIFFER: {weights}")


if __name__ == "__main__":
    main()
