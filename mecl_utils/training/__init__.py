"""Training one branch classifier-wise (Sec. II-A, III), with or without distillation from the final exit."""
