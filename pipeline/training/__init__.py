"""How stages train: the training loop and its checkpoints, the training device and precision,
data-parallel training under ``torchrun``, adversarial training and progress bars."""
