"""Difficulty scores that no teacher network's loss gives (issue 35), named in a profile in two ways.

The paper orders the training data by a teacher's per-sample loss (Sec. III). A score of
``curriculum.difficulty.SCORES`` named among a profile's ``teachers`` is searched and reported like any
teacher; named in its ``scores``, it is compared beside Table IV's teacher in the conditions stage
(``stages.condition_specs``) and never searched. Either way a run's identity holds the score's cache key
(``score_key``) as it holds a teacher's.

- ``prediction_depth`` (Baldock, Maennel & Neyshabur, 2021): k-NN probes (k = 30) on the trained, frozen
  backbone's activations at ``PROBES`` layers, global-average-pooled (the full activations of the early
  layers would not fit in memory at book scale), against the backbone's own final prediction. The layers
  are those that apply a nonlinearity and output 4-D maps (ReLU or Activation layers, convolutions with a
  built-in activation), ``PROBES`` of them evenly spaced by depth, the deepest included
  (``probe_layers``). A sample's depth never reads its own label (the probes are leave-one-out), so a
  noisy-label condition uses the same scores.
- ``exit_agreement``: the same question asked of vanilla early exits at the profile's placements and the
  final classifier (``exit_agreement``, where the exits' recipe is stated).
- ``forgetting_events`` (Toneva et al., 2019): how often the backbone's fine-tuning forgot a sample, counted
  from the predictions its fit logged at no extra pass (``trained_networks.training_predictions``). A sample
  never classified correctly scores the number of epochs, above any count (Toneva et al. count it as
  forgotten without end; the sorting needs a finite number). It reads each sample's label, so a noisy-label
  condition counts it against the noisy labels (``relabelled_scores``), as it rescores a teacher's loss.

Scores are cached by content like a teacher's losses (``difficulty_score``).
"""

from __future__ import annotations

import keras
import numpy as np

from mecl_utils.cache import array_fingerprint, cache_key, cached_arrays
from mecl_utils.curriculum.difficulty import (
    PROBE_NEIGHBOURS,
    SCORES,
    forgetting_events,
    prediction_depth,
    reads_labels,
)
from mecl_utils.networks.backbones import PREDICT_BATCH_SIZE
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol.conditions import noisy_losses
from mecl_utils.protocol.exit_agreement import agreement_parts, exit_agreement_scores
from mecl_utils.protocol.profiles import Profile
from mecl_utils.protocol.trained_networks import (
    network_keys,
    teacher_losses,
    teacher_train_logits,
    trained_backbone,
    training_predictions,
)

__all__ = [
    "PROBES",
    "difficulty_score",
    "label_outputs",
    "probe_layers",
    "relabelled_scores",
    "score_key",
    "score_parts",
    "teacher_key",
    "teacher_logits",
    "teacher_scores",
]

PROBES = 8  # layers probed for the prediction depth
SCORES_VERSION = 1  # part of every score's cache key: bump when a score's computation changes


def probe_layers(model: keras.Model, count: int = PROBES) -> list[str]:
    """``count`` activation layers of ``model`` with 4-D outputs, evenly spaced by depth, the deepest last."""
    candidates = [layer.name for layer in model.layers if _nonlinear(layer) and len(layer.output.shape) == 4]
    if not candidates:
        raise ValueError(f"{model.name} has no activation layer with a 4-D output to probe")
    picks = np.unique(np.round(np.linspace(0, len(candidates) - 1, min(count, len(candidates)))).astype(int))
    return [candidates[i] for i in picks]


def _nonlinear(layer: keras.layers.Layer) -> bool:
    """An activation layer, or a layer with a built-in activation other than the identity."""
    if isinstance(layer, keras.layers.ReLU | keras.layers.Activation):
        return True
    activation = getattr(layer, "activation", None)
    return activation is not None and activation is not keras.activations.linear


def score_parts(
    profile: Profile, score: str, backbone_network: str, dataset: Dataset, splits: Splits
) -> dict:
    """What determines ``score`` on a case's training split: the backbone's key, the probes, the rows."""
    if score not in SCORES:
        raise ValueError(f"unknown difficulty score {score!r}; valid: {', '.join(SCORES)}")
    backbone = network_keys(profile, "self", backbone_network, dataset, splits, seed=profile.seed)
    parts = {"version": SCORES_VERSION, "score": score, "backbone": backbone.key}
    if score == "prediction_depth":
        parts |= {"neighbours": PROBE_NEIGHBOURS, "probes": PROBES}
    elif score == "exit_agreement":
        parts |= {"val_index": array_fingerprint(splits.val.index)}
        parts |= agreement_parts(profile, backbone_network, dataset, splits)
    return {**parts, "train_index": array_fingerprint(splits.train.index)}


def score_key(profile: Profile, score: str, backbone_network: str, dataset: Dataset, splits: Splits) -> str:
    return cache_key(score_parts(profile, score, backbone_network, dataset, splits))


def teacher_key(
    profile: Profile, teacher: str, backbone_network: str, dataset: Dataset, splits: Splits
) -> str:
    """What a run's identity holds of ``teacher``: a score's cache key, or the teacher's losses' key."""
    if teacher in SCORES:
        return score_key(profile, teacher, backbone_network, dataset, splits)
    return network_keys(profile, teacher, backbone_network, dataset, splits, seed=profile.seed).losses_key


def teacher_scores(
    profile: Profile,
    teacher: str,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    *,
    backbone: keras.Model | None = None,
) -> np.ndarray:
    """What orders the training split for ``teacher``: a score's values, or the teacher's losses (cached)."""
    if teacher in SCORES:
        return difficulty_score(profile, teacher, backbone_network, dataset, splits, backbone=backbone)
    return teacher_losses(profile, teacher, backbone_network, dataset, splits, seed=profile.seed)


def difficulty_score(
    profile: Profile,
    score: str,
    backbone_network: str,
    dataset: Dataset,
    splits: Splits,
    *,
    backbone: keras.Model | None = None,
) -> np.ndarray:
    """``score`` for every training sample of the case, in the split's row order (higher: harder); cached.

    ``backbone``: the case's trained backbone when the caller holds it (else read from the cache).
    """
    parts = score_parts(profile, score, backbone_network, dataset, splits)

    def compute() -> dict[str, np.ndarray]:
        if score == "forgetting_events":
            scores = relabelled_scores(
                score, label_outputs(profile, score, backbone_network, dataset, splits), splits.train.y
            )
            return {"scores": scores}
        model = backbone or trained_backbone(profile, backbone_network, dataset, splits, seed=profile.seed)
        if score == "exit_agreement":
            key = parts["backbone"]
            scores = exit_agreement_scores(profile, backbone_network, dataset, splits, model, key)
            return {"scores": scores.astype(np.float64)}
        layers = probe_layers(model)
        pooled = [keras.ops.mean(model.get_layer(name).output, axis=(1, 2)) for name in layers]
        probe = keras.Model(model.inputs, [*pooled, model.output])
        outputs = probe.predict(splits.train.x, batch_size=PREDICT_BATCH_SIZE, verbose=0)
        final = np.argmax(outputs[-1], axis=1)
        return {"scores": prediction_depth(outputs[:-1], splits.train.y, final).astype(np.float64)}

    return cached_arrays("difficulty_scores", parts, compute)["scores"]


def label_outputs(
    profile: Profile, teacher: str, backbone_network: str, dataset: Dataset, splits: Splits
) -> np.ndarray:
    """What ``teacher`` (a teacher or a score of ``LABEL_SCORES``) computed on the training split, one row per
    sample, from which it scores any labels (``relabelled_scores``): a teacher's logits, or the class the
    backbone's fine-tuning predicted for the sample in each epoch."""
    if not reads_labels(teacher):
        raise ValueError(f"{teacher} reads no sample's label, so it keeps its scores under any labels")
    if teacher == "forgetting_events":
        keys = network_keys(profile, "self", backbone_network, dataset, splits, seed=profile.seed)
        return training_predictions(
            profile, keys.network, dataset, splits, seed=keys.seed, epochs=keys.epochs
        ).T
    return teacher_logits(profile, teacher, backbone_network, dataset, splits)


def teacher_logits(
    profile: Profile, teacher: str, backbone_network: str, dataset: Dataset, splits: Splits
) -> np.ndarray:
    """The teacher's logits on ``splits.train`` (N × classes), cached beside its losses: what scores a label
    other than the data set's (a noisy-label condition, ``conditions.noisy_losses``)."""
    keys = network_keys(profile, teacher, backbone_network, dataset, splits, seed=profile.seed)
    parts = {**keys.losses_parts, "scores": "logits"}

    def compute() -> dict[str, np.ndarray]:
        train_logits = teacher_train_logits(
            profile, teacher, backbone_network, dataset, splits, seed=profile.seed
        )
        return {"logits": train_logits}

    return cached_arrays("teacher_logits", parts, compute)["logits"]


def relabelled_scores(teacher: str, outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``teacher``'s scores of samples labelled ``labels`` from their ``label_outputs`` rows."""
    if teacher == "forgetting_events":
        correct = outputs.T == np.asarray(labels)[None, :]  # (epochs, samples)
        counts = forgetting_events(correct)
        counts[np.isinf(counts)] = len(correct)  # never learned: above any count (see the module)
        return counts
    return noisy_losses(outputs, labels)
