"""Exit agreement: the early-exit question asked of each training sample by a multi-exit network (issue 35).

Prediction depth (Baldock, Maennel & Neyshabur, 2021) asks at which layer of a network the probes start
agreeing, for good, with its final prediction. Asked of the early exits themselves, the question becomes the
one an early-exit network answers at inference: from which exit on would every later exit, and the final
classifier, give the same class? A sample settled at the first exit is easy for this network; one that only
the final classifier settles is hard (``curriculum.difficulty.exit_agreement``).

The exits that answer are not the reported ones: a vanilla branch at each of the profile's placements
(Table II), trained once per case by a fixed recipe, Adam at 1e-3 (Keras' default rate) with the profile's
epochs, batch size, reduce-on-plateau and vanilla sampling, from seeds of their own stream (``"score"``,
``"exit_agreement"``), so that they share no seed with a search or a reported run. The recipe is fixed
rather than searched so that the score exists before any search and can be named where a teacher is. The
branches read their inputs as the case's runs do (``branch_inputs``: in memory, float16 shards or the cut
backbone, whichever fits), and the score's identity records which.
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from mecl_utils.curriculum.difficulty import exit_agreement
from mecl_utils.curriculum.sampler import sampler_for_method
from mecl_utils.networks.backbones import PREDICT_BATCH_SIZE
from mecl_utils.networks.branches import branch_layer
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.branch_inputs import branch_inputs, layer_modes, layer_shapes
from mecl_utils.protocol.feature_modes import Budget
from mecl_utils.protocol.feature_modes import identity as feature_identity
from mecl_utils.protocol.profiles import Profile
from mecl_utils.seeds import stream_seed
from mecl_utils.training.classifier_wise import TRAINING_VERSION, BranchRun, train_branch

__all__ = ["EXIT_LEARNING_RATE", "EXIT_OPTIMIZER", "agreement_parts", "exit_agreement_scores"]

EXIT_OPTIMIZER = "adam"
EXIT_LEARNING_RATE = 1e-3


def agreement_parts(profile: Profile, backbone_network: str, dataset: Dataset, splits: Splits) -> dict:
    """What, beside the backbone and the splits, determines the exits that score a case: among it where
    each exit's inputs live, chosen on this machine's budget as ``exit_agreement_scores`` will choose it."""
    layers = [branch_layer(backbone_network, dataset.name, n) for n in profile.branch_numbers]
    shapes = _layer_shapes(profile, backbone_network, tuple(dataset.x_train.shape[1:]), tuple(layers))
    modes = layer_modes(profile, backbone_network, dataset, splits, shapes, Budget.of_this_machine())
    return {
        "layers": layers,
        "features": {layer: feature_identity(modes[layer]) for layer in layers},
        "training_version": TRAINING_VERSION,
        "optimizer": EXIT_OPTIMIZER,
        "learning_rate": EXIT_LEARNING_RATE,
        "epochs": profile.branch_epochs,
        "batch_size": profile.branch_batch_size,
        "plateau": [profile.plateau_patience, profile.plateau_factor],
        "class_balance": profile.class_balance,
        "vanilla_sampling": profile.vanilla_sampling,
        "seed": profile.seed,
    }


@functools.lru_cache(maxsize=8)
def _layer_shapes(profile: Profile, network: str, input_shape: tuple, layers: tuple[str, ...]) -> dict:
    """``layer_shapes``, kept per process: a run's identity asks for the score's key once per run, and
    building one of the paper's backbones takes seconds."""
    return layer_shapes(profile, network, input_shape, set(layers))


def exit_agreement_scores(
    profile: Profile,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    backbone: keras.Model,
    backbone_key: str,
) -> np.ndarray:
    """Per training sample, the earliest exit (0: the first branch; ``len(branch_numbers)``: only the final
    classifier) from which every later exit agrees with the backbone's final prediction."""
    y_train, y_val = splits.train.y, splits.val.y
    predictions = []
    for number in profile.branch_numbers:
        layer = branch_layer(backbone_network, dataset.name, number)
        held = branch_inputs(profile, backbone_network, dataset, splits, backbone, backbone_key, layer)
        x_train, x_val = held.inputs["train"], held.inputs["val"]
        seeds = {
            stream: stream_seed(profile.seed, "score", "exit_agreement", number, stream)
            for stream in ("init", "dropout", "sampling", "order")
        }
        sampler = sampler_for_method(
            "vanilla",
            np.zeros(len(y_train)),
            profile.branch_batch_size,
            None,
            seed=seeds["sampling"],
            order_seed=seeds["order"],
            labels=y_train,
            balance=profile.class_balance,
            vanilla_sampling=profile.vanilla_sampling,
        )
        run = BranchRun(
            optimizer=EXIT_OPTIMIZER,
            learning_rate=EXIT_LEARNING_RATE,
            epochs=profile.branch_epochs,
            plateau_patience=profile.plateau_patience,
            plateau_factor=profile.plateau_factor,
            init_seed=seeds["init"],
            dropout_seed=seeds["dropout"],
        )
        result = train_branch(
            run,
            sampler,
            (x_train, y_train),
            (x_val, y_val),
            (x_val, y_val),
            num_classes=dataset.num_classes,
            frozen_backbone=held.cut,
            predict={"train": x_train},
        )
        predictions.append(np.argmax(result.probabilities["train"], axis=1))
    final = backbone.predict(splits.train.x, batch_size=PREDICT_BATCH_SIZE, verbose=0)
    predictions.append(np.argmax(final, axis=1))
    return exit_agreement(np.stack(predictions))
