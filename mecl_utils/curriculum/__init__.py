"""The curriculum (Sec. II-B, Fig. 2): pacing functions, difficulty orderings, the mini-batch sampler."""
