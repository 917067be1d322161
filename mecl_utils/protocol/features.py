"""Backbone features at the branch layers: computed once per backbone, cached, then fed to the branches.

Implements, for Bakhtiarnia, Zhang & Iosifidis (2021), the data side of classifier-wise training
(Sec. II-A, Sec. III): the backbone is frozen, so what a branch reads at its attachment point never changes
during branch training. Its activations for every image of every split are computed once
(``extract_features``, inference mode) and cached (``cached_features``), and each grid point of the
protocol trains its branches on the cached arrays.

``branch_layer`` names the layer a branch reads: Table II's placements (``branches.PLACEMENTS``) for the
paper's backbones, ``block1_out``/``block2_out`` for the smoke profile's tiny CNN. Table II gives CIFAR-10
and CIFAR-100 only: CIFAR-100 with coarse labels uses the CIFAR-100 placements, and the offline digits the
CIFAR-10 ones.

Row ``i`` of a split's feature array belongs to sample ``i`` of that split, so indices that a sampler draws
into ``splits.train`` index the train feature rows directly.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from collections.abc import Callable, Sequence

import keras
import numpy as np
from tqdm.auto import tqdm

from mecl_utils.cache import array_fingerprint, cached_arrays, dataset_fingerprint
from mecl_utils.networks.branches import feature_extractor
from mecl_utils.networks.data import Dataset, Splits
from mecl_utils.protocol import trained_networks
from mecl_utils.protocol.profiles import Profile

__all__ = ["SPLIT_NAMES", "cached_features", "extract_features"]

FEATURES_VERSION = 1
SPLIT_NAMES = tuple(field.name for field in dataclasses.fields(Splits))  # train, val, hparam, test


def extract_features(
    classifier: keras.Model,
    layer_names: Sequence[str],
    x: np.ndarray,
    *,
    batch_size: int = 256,
    verbose: bool = False,
    description: str = "features",
) -> dict[str, np.ndarray]:
    """Float32 activations of ``classifier`` at ``layer_names`` for the images ``x``, in inference mode."""
    if len(x) == 0:
        raise ValueError("extract_features needs at least one image, got an empty array.")
    extractor = _extractor(classifier, tuple(layer_names))
    out: dict[str, np.ndarray] = {}
    starts = range(0, len(x), batch_size)
    for start in tqdm(starts, desc=description, unit="batch", disable=not verbose):
        # predict_on_batch runs the compiled inference function: BatchNorm and Dropout in inference mode.
        batch = extractor.predict_on_batch(np.asarray(x[start : start + batch_size], dtype=np.float32))
        for name in layer_names:
            values = np.asarray(batch[name], dtype=np.float32)
            if name not in out:
                out[name] = np.empty((len(x), *values.shape[1:]), dtype=np.float32)
            out[name][start : start + len(values)] = values
    return out


# One extractor per (classifier, layers): extracting shard after shard traces its predict function once.
_EXTRACTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _extractor(classifier: keras.Model, layer_names: tuple[str, ...]) -> keras.Model:
    by_layers = _EXTRACTORS.setdefault(classifier, {})
    if layer_names not in by_layers:
        by_layers[layer_names] = feature_extractor(classifier, list(layer_names))
    return by_layers[layer_names]


def cached_features(
    profile: Profile,
    network: str,
    dataset: Dataset,
    splits: Splits,
    classifier_parts_key: str,
    layer_names: Sequence[str],
    *,
    classifier: keras.Model | None = None,
    verbose: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """{split name: {layer name: features}} for the splits train, val, hparam and test, through the cache.

    ``classifier_parts_key`` is the backbone's cache key (``trained_networks.backbone_key``); each (split,
    layer) array is cached under it. ``classifier`` is the backbone, needed only when something is not cached;
    if omitted, the profile's backbone (``trained_networks.trained_backbone`` with ``profile.seed``) is used,
    after checking that its key is ``classifier_parts_key``.
    """
    layer_names = list(layer_names)
    if not layer_names or len(set(layer_names)) != len(layer_names):
        raise ValueError(f"layer_names must be non-empty and distinct, got {layer_names}.")
    get_classifier = _classifier_getter(profile, network, dataset, splits, classifier_parts_key, classifier)
    common = {
        "version": FEATURES_VERSION,
        "classifier": classifier_parts_key,
        "network": network,
        "dataset_fingerprint": dataset_fingerprint(dataset),
    }
    result: dict[str, dict[str, np.ndarray]] = {}
    for split_name in SPLIT_NAMES:
        split = getattr(splits, split_name)
        parts = {**common, "split": split_name, "split_index": array_fingerprint(split.index)}
        extracted: dict[str, np.ndarray] = {}  # every layer of this split, filled on the first cache miss

        def compute(layer: str, x=split.x, description=split_name, extracted=extracted) -> dict:
            if not extracted:
                model = get_classifier()
                extracted.update(
                    extract_features(model, layer_names, x, verbose=verbose, description=description)
                )
            return {"features": extracted[layer]}

        result[split_name] = {}
        for layer in layer_names:
            arrays = cached_arrays("features", {**parts, "layer": layer}, functools.partial(compute, layer))
            result[split_name][layer] = arrays["features"]
    return result


def _classifier_getter(
    profile: Profile,
    network: str,
    dataset: Dataset,
    splits: Splits,
    key: str,
    classifier: keras.Model | None,
) -> Callable[[], keras.Model]:
    """A function returning the backbone, loaded (or checked) only when first called."""
    loaded: list[keras.Model] = [] if classifier is None else [classifier]

    def get() -> keras.Model:
        if not loaded:
            seed = profile.seed
            expected = trained_networks.backbone_key(profile, network, dataset, splits, seed=seed)
            if expected != key:
                raise ValueError(
                    f"Features for backbone {key} are not cached, and the profile's {network} backbone has "
                    f"key {expected}: pass classifier=<the backbone model> to compute them."
                )
            loaded.append(trained_networks.trained_backbone(profile, network, dataset, splits, seed=seed))
        return loaded[0]

    return get
