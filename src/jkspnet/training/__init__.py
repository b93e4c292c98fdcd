"""Training: configuration, the trainer, data, losses, checkpoints, distributed runs."""
