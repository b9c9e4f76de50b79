"""Adversarial robustness: L-inf attacks, robust accuracy, adversarial-training losses.

Inputs are raw pixels in ``[lo, hi]`` (default ``[0, 1]``); normalisation lives inside the model
(``Normalize``).
"""

from compress.robust.attacks import ATTACKS, LinfAttack, create_attack, list_attacks
from compress.robust.evaluation import robust_accuracy
from compress.robust.normalize import Normalize
from compress.robust.training import adversarial_loss

__all__ = [
    "ATTACKS",
    "LinfAttack",
    "Normalize",
    "adversarial_loss",
    "create_attack",
    "list_attacks",
    "robust_accuracy",
]
