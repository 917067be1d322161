"""Which profile a book build runs: ``auto`` is ``book`` when CIFAR-10 and the MobileNet weights are on disk.

Otherwise ``auto`` falls back to ``smoke`` and says why; an explicit ``book`` or ``paper`` never falls back.
"""

from __future__ import annotations

import os
from pathlib import Path

from mecl_utils.networks import data

__all__ = ["PROFILE_CHOICES", "resolve_profile"]

PROFILE_CHOICES = ("auto", "smoke", "book", "paper")


def _looked_in(data_dir: str | None) -> str:
    if data_dir or os.environ.get("MECL_DATA_DIR"):
        return f"looked in {data_dir or os.environ['MECL_DATA_DIR']}"
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    return f"looked in the Keras cache {keras_home / 'datasets'}; MECL_DATA_DIR is not set"


def resolve_profile(requested: str, data_dir: str | None = None) -> tuple[str, str]:
    """(profile, reason): "auto" is "book" when CIFAR-10 and the MobileNet weights are local, else "smoke".

    With ``MECL_ALLOW_DOWNLOAD=1`` whatever is missing is left for Keras to download. An explicit "book" or
    "paper" never falls back: a missing data set raises ``data.DataNotFoundError`` saying how to fix it.
    """
    if requested not in PROFILE_CHOICES:
        raise ValueError(f"unknown profile {requested!r}; choose one of {', '.join(PROFILE_CHOICES)}.")
    if requested == "smoke":
        return "smoke", "the smoke profile was requested"
    from mecl_utils.networks.backbones import (
        mobilenet_weights_path,  # imports Keras: only when a profile needs real data
    )
    from mecl_utils.protocol.profiles import get_profile

    allow_download = os.environ.get("MECL_ALLOW_DOWNLOAD") == "1"
    profile = "book" if requested == "auto" else requested
    names = [name for name in get_profile(profile).datasets if name != "digits"]
    found = {name.upper().replace("CIFAR", "CIFAR-"): data.find_local(name, data_dir) for name in names}
    missing = [name for name, folder in found.items() if folder is None]
    weights = mobilenet_weights_path(alpha=0.25)
    if requested == "auto" and not allow_download and (missing or weights == "imagenet"):
        problem = (
            f"CIFAR-10 not found locally ({_looked_in(data_dir)})"
            if missing
            else "no MobileNet α=0.25 weights file in $MECL_WEIGHTS_DIR, ~/.keras/models or ../shared/data"
        )
        return "smoke", (
            f"{problem}; set MECL_DATA_DIR or run `make book DATA_DIR=…` to use the book profile "
            "(or set MECL_ALLOW_DOWNLOAD=1 to let Keras download what is missing)"
        )
    if missing and not allow_download:
        raise data.DataNotFoundError(
            f"The {profile} profile needs {' and '.join(missing)}, not found locally "
            f"({_looked_in(data_dir)}). To fix, run `make book DATA_DIR=DIR` (or set MECL_DATA_DIR=DIR) with "
            f"DIR holding cifar-10-batches-py/ (CIFAR-10 offline: `{data.OFFLINE_BUILD_HINT}`), or set "
            "MECL_ALLOW_DOWNLOAD=1 to let Keras download it."
        )
    sources = [
        f"{name} {f'found in {folder}' if folder else 'to download'}" for name, folder in found.items()
    ]
    if profile == "book":
        sources.append(f"MobileNet weights {'to download' if weights == 'imagenet' else f'in {weights}'}")
    how = "chosen automatically" if requested == "auto" else "requested"
    return profile, f"the {profile} profile was {how}: {' and '.join(sources)}"
