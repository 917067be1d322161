"""The protocol (Sec. III): profiles, trained networks, scores, features, run identity and stages, results."""
