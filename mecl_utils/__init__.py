"""mecl_utils: the library behind the mecl book.

Multi-Exit Curriculum Learning (Bakhtiarnia, Zhang & Iosifidis, 2021): early-exit branches on a frozen
backbone, trained classifier-wise with curriculum learning. One module per concept:

- ``pacing``: the pacing functions λ(t) of Eq. (2)-(7) and the Table III presets;
- ``curriculum``: difficulty scores (teacher cross-entropy) and the four orderings of Sec. III;
- ``sampler``: the curriculum mini-batch process of Fig. 2, for Keras or for cached feature arrays;
- ``data``: CIFAR-10/100 and offline digits, with train/validation/hyper-parameter/test splits;
- ``models``: Table I networks, Table II branch placements, the Fig. 7 branch, multi-exit models.
"""

__version__ = "0.1.0"
