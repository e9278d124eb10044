"""Training: the one loop every family uses (`loop.fit`), resume checkpoints, and the per-family recipes."""
