"""``gpuguard agent``: ground truth on one GPU node (what containers hold vs what they were allocated)."""
