"""The open questions of Sec. V: whole-network training (end-to-end, layer-wise) and distilled exits."""
