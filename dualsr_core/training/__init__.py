"""Training CoarSR: patches from real scenes, the training loop, checkpoints and reports."""
