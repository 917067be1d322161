"""Early exit at inference: exit policies, accuracy against compute, and real staged latency on this CPU."""
