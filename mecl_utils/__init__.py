"""mecl_utils: the library behind the mecl book.

Multi-Exit Curriculum Learning (Bakhtiarnia, Zhang & Iosifidis, 2021): early-exit branches on a frozen
backbone, trained classifier-wise with curriculum learning. The subpackages, in the order data flows
through them (each imports only from those above it and from the foundations):

- ``curriculum/``: pacing λ(t) (Eq. 2-7, Table III), difficulty orderings (Sec. III), the Fig. 2 sampler,
  measures of difficulty beyond a teacher's loss;
- ``networks/``: data and splits, the Table I backbones, Table II placements and the Fig. 7 branch, costs;
- ``training/``: one branch trained classifier-wise (Sec. II-A), optionally distilled from the final exit;
  a fit that logs each training sample's prediction (forgetting events);
- ``protocol/``: profiles, trained networks and scores, features, run identity, the stages (and training
  conditions), results;
- ``run/``: a case prepared, a grid run case by case side by side, Ray tasks, the watchdog;
- ``strategies/``: the Sec. V questions: end-to-end and layer-wise networks, distilled exits;
- ``exits/``: exit policies, accuracy against compute, real staged latency on this CPU;
- ``report/``: Table IV, tables, figures and the sentences the chapters print;
- ``book/``: the chapters' one import surface, parameters, kernels, chapter cache, the Jupyter Book build.

Foundations every layer may use: ``seeds`` (one root seed, a named stream per random choice), ``cache``
(content-keyed, atomic), ``statistics`` (paired differences, intervals, Holm, the significance rule) and
``quiet`` (TensorFlow's start-up notices off the console; ``MECL_VERBOSE=1`` shows them). The command line
is ``python -m mecl_utils`` (``__main__``, its arguments in ``command_line``).
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
