"""mecl_utils: the library behind the mecl book.

Multi-Exit Curriculum Learning (Bakhtiarnia, Zhang & Iosifidis, 2021): early-exit branches on a frozen
backbone, trained classifier-wise with curriculum learning. One module per concept:

- ``pacing``: the pacing functions λ(t) of Eq. (2)-(7) and the Table III presets;
- ``curriculum``: difficulty scores (teacher cross-entropy) and the four orderings of Sec. III;
- ``sampler``: the curriculum mini-batch process of Fig. 2, for Keras or for cached feature arrays;
- ``data``: CIFAR-10/100 and offline digits, with train/validation/hyper-parameter/test splits;
- ``models``: Table I networks, Table II branch placements, the Fig. 7 branch, multi-exit models;
- ``engine``: branch runs and networks as Ray tasks, on an embedded local instance or a cluster;
- ``grid``: the protocol's cases side by side, each case's stages in order;
- ``reaper``: a watchdog that ends what a killed driver started;
- ``plan``: a grid before it runs: per case, feature sizes, runs and an estimated time;
- ``quiet``: TensorFlow's start-up notices kept off the console (``MECL_VERBOSE=1`` shows them).
- ``statistics``: paired differences, their intervals, Holm's correction and the significance rule that
  every layer computing or reading a comparison uses.
"""

import os

from mecl_utils import quiet

__version__ = "0.1.0"

# TensorFlow's oneDNN kernels are off by default on AMD CPUs; with them on, the branches train 1.15-1.4x
# and the tiny CNN 1.7x faster on the project's machine (benchmarks/README.md). This takes effect when
# mecl_utils is imported before TensorFlow, and always in the processes it starts (notebook kernels,
# branch-training workers). Set TF_ENABLE_ONEDNN_OPTS=0 to opt out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

quiet.install()
