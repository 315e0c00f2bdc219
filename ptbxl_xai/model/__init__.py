"""Model stage: the hybrid network, benchmark baselines, losses, training and checkpoints."""
